package pool

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/link"
)

var srv *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &srv)) }

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	cfg.Name = "app"
	cfg.Origin = srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPoolNeverOpensMoreThanMaxConns(t *testing.T) {
	p := newPool(t, Config{MaxConns: 3, QueueTimeout: 5 * time.Second})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				c, err := p.Acquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				peak = max(peak, p.Stats().InUse)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				p.Release(c)
			}
		}()
	}
	wg.Wait()
	if peak > 3 {
		t.Errorf("peak connections in use = %d, want at most 3", peak)
	}
	if s := p.Stats(); s.InUse != 0 || s.Idle > 3 {
		t.Errorf("after the load: %+v, want nothing in use and at most 3 idle", s)
	}
}

func TestPoolQueueTimesOutWhenEveryConnectionStaysBusy(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Acquire(ctx); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("second Acquire: %v, want ErrQueueTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("gave up after %v, before the queue timeout", d)
	}
	p.Release(c)
	c2, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c {
		t.Error("the released connection was not reused")
	}
	p.Release(c2)
}

// leasedWithAWaiter returns a one-connection pool, its connection leased, and the channel on
// which a second session, queued for it, will receive its lease.
func leasedWithAWaiter(t *testing.T) (*Pool, *Conn, chan *Conn) {
	t.Helper()
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 5 * time.Second})
	ctx := context.Background()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Conn)
	go func() {
		c2, err := p.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c2
	}()
	for p.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
	return p, c, got
}

func TestPoolHandsAReleasedConnectionToTheFirstWaiter(t *testing.T) {
	p, c, got := leasedWithAWaiter(t)
	p.Release(c)
	if c2 := <-got; c2 != c {
		t.Error("the waiter did not get the released connection")
	} else {
		p.Release(c2)
	}
}

func TestPoolDropsABrokenConnectionAndLetsAWaiterDial(t *testing.T) {
	p, c, got := leasedWithAWaiter(t)
	c.broken = true
	p.Release(c)
	c2 := <-got
	if c2 == nil || c2 == c {
		t.Fatal("the waiter got the broken connection or none")
	}
	p.Release(c2)
	if s := p.Stats(); s.InUse != 0 || s.Idle != 1 {
		t.Errorf("stats %+v, want one idle connection", s)
	}
}

func TestPoolClosesIdleConnectionsAfterTheIdleTimeout(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2, IdleTimeout: 50 * time.Millisecond})
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Release(c)
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Idle > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPoolLearnsTheOriginProfileFromItsFirstConnection(t *testing.T) {
	p := newPool(t, Config{})
	prof, err := p.Profile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if prof["server_version"] == "" || prof["server_encoding"] != "UTF8" {
		t.Errorf("profile %v lacks server_version or UTF8 server_encoding", prof)
	}
	if prof["application_name"] != "slipstream" {
		t.Errorf("origin connections call themselves %q, want slipstream", prof["application_name"])
	}
}

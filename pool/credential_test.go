package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// rotating is a CredentialSource that tests switch by hand.
type rotating struct {
	mu  sync.Mutex
	cur *Credential
	err error
}

func (r *rotating) source(ctx context.Context) (*Credential, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.err
}

func (r *rotating) rotate(next *Credential) (old *Credential) {
	r.mu.Lock()
	old, r.cur = r.cur, next
	r.mu.Unlock()
	old.Retire()
	return old
}

func TestRetiredCredentialConnectionsCloseWhenIdleNeverInUse(t *testing.T) {
	// Both credentials are the app user's: the origin can't tell them apart, the pool can.
	src := &rotating{cur: NewCredential(pgtest.AppUser, pgtest.AppPassword)}
	p := newPool(t, Config{MaxConns: 2, Credentials: src.source})
	ctx := context.Background()
	leased, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Release(idle)
	first := src.cur
	if n := first.Conns(); n != 2 {
		t.Fatalf("%d connections counted on the credential, want 2", n)
	}
	old := src.rotate(NewCredential(pgtest.AppUser, pgtest.AppPassword))
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for old.Conns() != 1 { // the idle one closes at once
		select {
		case <-ctx2.Done():
			t.Fatalf("the idle connection on the retired credential was not closed: %d open", old.Conns())
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case <-old.Drained():
		t.Fatal("drained while a connection on it is leased")
	default:
	}
	// The leased connection is the session's until it gives it back.
	if leased.Broken() || leased.nc == nil {
		t.Fatal("the leased connection was touched")
	}
	p.Release(leased)
	select {
	case <-old.Drained():
	case <-ctx2.Done():
		t.Fatal("not drained after the leased connection came back")
	}
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.cred != src.cur {
		t.Error("a new connection did not use the new credential")
	}
	p.Release(c)
	if s := p.Stats(); s.InUse+s.Idle > 2 {
		t.Errorf("stats %+v: more than max_connections", s)
	}
}

func TestCredentialHoldRefusesARetiredOne(t *testing.T) {
	c := NewCredential("u", "p")
	release, ok := c.Hold()
	if !ok {
		t.Fatal("Hold refused a live credential")
	}
	c.Retire()
	if _, ok := c.Hold(); ok {
		t.Error("Hold counted a connection on a retired credential")
	}
	release()
	release() // twice does nothing
	select {
	case <-c.Drained():
	default:
		t.Error("not drained after its only connection closed")
	}
	if c.Conns() != 0 {
		t.Errorf("%d connections", c.Conns())
	}
}

func TestNoCredentialReachesTheSessionNamingTheDatabase(t *testing.T) {
	src := &rotating{err: fmt.Errorf("database app: %w at 12:00 (the API said 503)", ErrNoCredential)}
	p := newPool(t, Config{Credentials: src.source})
	_, err := p.Acquire(context.Background())
	if !errors.Is(err, ErrNoCredential) {
		t.Fatalf("Acquire = %v, want ErrNoCredential", err)
	}
}

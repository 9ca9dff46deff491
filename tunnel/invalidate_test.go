package tunnel_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// recorder is an edge cache that records its invalidations, and signals drops of a whole
// database on drops; with hold set, it holds an invalidation of tables until hold is closed,
// as a stuck edge would.
type recorder struct {
	drops chan struct{}

	mu    sync.Mutex
	hold  chan struct{}
	calls []string
}

func (r *recorder) Invalidate(db string, tables []string, all bool) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("%s %q all=%v", db, tables, all))
	hold := r.hold
	r.mu.Unlock()
	if all {
		select {
		case r.drops <- struct{}{}:
		default:
		}
	} else if hold != nil {
		<-hold
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// edgeWithCache returns an edge end connected to the pool at addr, whose cache is r.
func edgeWithCache(t *testing.T, addr string, tlsConf *tls.Config, r *recorder) *tunnel.Client {
	t.Helper()
	c := tunnel.Dial(context.Background(), addr, tunnel.ClientConfig{TLS: tlsConf, Logger: quiet, ConnectWait: 2 * time.Second, Cache: r})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// write sends a unit through s as one that writes table (unless table is empty), and returns
// how long its answer took. A stream's Recv is given one context for its whole life.
func write(t *testing.T, s link.Stream, table string) time.Duration {
	t.Helper()
	if table != "" {
		s.(interface{ ReportWrites([]string, bool) }).ReportWrites([]string{table}, false)
	}
	start := time.Now()
	ctx := context.Background()
	if err := s.Send(ctx, query("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	for s.Pending() {
		if _, err := s.Recv(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start)
}

func TestAWriteInvalidatesEveryOtherEdgeBeforeItsAnswerArrives(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{})
	var a, b, c recorder
	writer := openStream(t, edgeWithCache(t, addr, edgeTLS, &a))
	edgeWithCache(t, addr, edgeTLS, &b)
	edgeWithCache(t, addr, edgeTLS, &c)

	for i := range 3 {
		write(t, writer, "users")
		want := slices.Repeat([]string{pgtest.AppDB + ` ["users"] all=false`}, i+1)
		if got := b.seen(); !slices.Equal(got, want) {
			t.Fatalf("edge b's invalidations once the answer is in: %q, want %q", got, want)
		}
		if got := c.seen(); !slices.Equal(got, want) {
			t.Fatalf("edge c's invalidations once the answer is in: %q, want %q", got, want)
		}
	}
	if got := a.seen(); len(got) != 0 {
		t.Errorf("the writing edge was sent %q: it invalidates itself", got)
	}
	// A unit that reports no writes invalidates nothing.
	write(t, writer, "")
	if got := b.seen(); len(got) != 3 {
		t.Errorf("edge b's invalidations after a read: %q", got)
	}
}

func TestAnEdgeThatDoesNotAcknowledgeIsDisconnectedAndTheWriteCompletes(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	const ack = 300 * time.Millisecond
	addr, _ := startPoolEnd(t, poolTLS, pool.Config{}, tunnel.ServerConfig{AckTimeout: ack})
	var a recorder
	hold := make(chan struct{})
	stuck := recorder{hold: hold, drops: make(chan struct{}, 1)}
	writer := openStream(t, edgeWithCache(t, addr, edgeTLS, &a))
	edge := edgeWithCache(t, addr, edgeTLS, &stuck)
	t.Cleanup(func() { close(hold) }) // runs before the edge's Close
	edge.Warm(pgtest.AppDB)           // it serves the app database: a reconnect drops it

	took := write(t, writer, "users")
	if took < ack || took > ack+3*time.Second {
		t.Errorf("the write took %v with an edge that never acknowledges, want about %v", took, ack)
	}
	// The stuck edge lost its connection, and dropped the whole database when it made a new one.
	select {
	case <-stuck.drops:
	case <-time.After(10 * time.Second):
		t.Fatalf("the stuck edge's invalidations: %q, want a drop of the database after the write", stuck.seen())
	}
	// A unit answered over the new connection: the pool end has registered it (it serves no
	// stream of a connection before, so nothing the edge caches can predate that).
	write(t, openStream(t, edge), "")
	// Its new connection hears of the next write, and acknowledges it: it stays connected (no
	// drop of the database follows).
	stuck.mu.Lock()
	stuck.hold = nil
	stuck.mu.Unlock()
	write(t, writer, "orders")
	if got := stuck.seen(); got[len(got)-1] != pgtest.AppDB+` ["orders"] all=false` {
		t.Errorf("the reconnected edge's invalidations: %q", got)
	}
	select {
	case <-stuck.drops:
		t.Errorf("the edge lost its connection after acknowledging: %q", stuck.seen())
	default:
	}
}

func TestAnEdgeThatCachesNothingStillReportsItsWrites(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{})
	var other recorder
	edgeWithCache(t, addr, edgeTLS, &other)
	// startEdge's proxy has no cache at all: the pool's cache and the other edges' still
	// depend on what it writes.
	conn := connect(t, startEdge(t, dialPool(t, addr, edgeTLS)))
	ctx := context.Background()
	for _, q := range []string{"CREATE TABLE IF NOT EXISTS uncached_w (v int)", "INSERT INTO uncached_w VALUES (1)"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	want := pgtest.AppDB + ` ["uncached_w"] all=false`
	if got := other.seen(); !slices.Contains(got, want) {
		t.Errorf("the other edge's invalidations once the insert is answered: %q, want %q among them", got, want)
	}
}

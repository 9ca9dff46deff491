package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// A brute-force guard: failed logins (28P01, or MySQL's 1045: a wrong password or an unknown
// user) are counted per client address, and from the guardFree-th failure within guardWindow
// on, the refusal waits before it is sent, twice as long at each further failure, up to
// guardMaxDelay. The refusal itself is exactly PostgreSQL's or MariaDB's; only its timing
// changes. Counted in
// slipstream_auth_failures_total{outcome="refused|delayed"}.
const (
	guardFree     = 3 // failures answered at once
	guardBase     = 250 * time.Millisecond
	guardMaxDelay = 5 * time.Second
	guardWindow   = 10 * time.Minute // failures older than this are forgotten
	guardMaxAddrs = 1 << 16          // addresses remembered; past it the stale ones go, then all
)

// loginGuard counts failed logins by client address (without port).
type loginGuard struct {
	mu sync.Mutex
	m  map[string]loginFailures
}

type loginFailures struct {
	n    int
	last time.Time
}

// fail counts one failure of addr and returns how long its refusal waits.
func (g *loginGuard) fail(addr string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[string]loginFailures)
	}
	if len(g.m) >= guardMaxAddrs {
		for k, f := range g.m {
			if now.Sub(f.last) > guardWindow {
				delete(g.m, k)
			}
		}
		if len(g.m) >= guardMaxAddrs {
			clear(g.m)
		}
	}
	f := g.m[addr]
	if now.Sub(f.last) > guardWindow {
		f.n = 0
	}
	f.n++
	f.last = now
	g.m[addr] = f
	return guardDelay(f.n)
}

// guardDelay is the wait before the refusal of an address's n-th failure in a row.
func guardDelay(n int) time.Duration {
	if n <= guardFree {
		return 0
	}
	d := guardBase
	for i := guardFree + 1; i < n && d < guardMaxDelay; i++ {
		d *= 2
	}
	return min(d, guardMaxDelay)
}

// loginFailed counts err, when it is a refused password, against the client's address and
// slows its answer down after repeated failures; it returns err.
func (s *Server) loginFailed(ctx context.Context, st *startup, err error) error {
	var pe *pgwire.Error
	if errors.As(err, &pe) && pe.Code == pgwire.InvalidPassword {
		s.slowRefusal(ctx, st.nc.RemoteAddr())
	}
	return err
}

// slowRefusal counts a refused login from addr and waits, after repeated failures, before
// the refusal is sent.
func (s *Server) slowRefusal(ctx context.Context, remote net.Addr) {
	addr := remote.String()
	if host, _, splitErr := net.SplitHostPort(addr); splitErr == nil {
		addr = host
	}
	d := s.guard.fail(addr, time.Now())
	if d == 0 {
		s.m.logins.WithLabelValues("refused").Inc()
		return
	}
	s.m.logins.WithLabelValues("delayed").Inc()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

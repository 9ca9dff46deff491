package placement

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// Candidate is one pool an edge can reach.
type Candidate struct {
	// Region names the pool; pins refer to it.
	Region string
	// Transport opens sessions on the pool.
	Transport link.Transport
	// Latency asks the pool for its latency to db's origin.
	Latency func(ctx context.Context, db string) (time.Duration, error)
	// Ping checks that the pool is reachable; nil means Latency of the first database decides.
	Ping func(ctx context.Context) error
}

// Config describes a Router.
type Config struct {
	// Candidates are the pools, in the order that breaks ties.
	Candidates []Candidate
	// Databases are the database names to place.
	Databases []string
	// Pins maps a database to the region that must serve it while that pool is up.
	Pins map[string]string
	// Interval is how often Run pings pools and refreshes latencies; 0 means 2 seconds.
	Interval time.Duration
	// Timeout bounds one ping or latency request; 0 means 1 second.
	Timeout time.Duration
	// Logger receives placement changes; nil means slog.Default().
	Logger *slog.Logger
}

// Router is a link.Transport that sends each database's sessions to the pool nearest its
// origin, and moves them to the next best pool when that one is down.
type Router struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	members []*member
	chosen  map[string]string // db -> region last chosen, for logging changes
}

type member struct {
	c    Candidate
	down bool
	lat  map[string]time.Duration // db -> origin latency; missing = unknown
}

// ErrNoPool means no pool is up for the database.
var ErrNoPool = errors.New("placement: no pool is reachable")

// NewRouter returns a router over cfg's candidates. Until Refresh or Run has measured them, it
// takes pools in the configured order.
func NewRouter(cfg Config) *Router {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Router{cfg: cfg, log: cfg.Logger, chosen: map[string]string{}}
	for _, c := range cfg.Candidates {
		r.members = append(r.members, &member{c: c, lat: map[string]time.Duration{}})
	}
	return r
}

// Run refreshes the router now and every Interval until ctx ends.
func (r *Router) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh pings every pool and asks the live ones for their origin latencies, concurrently.
func (r *Router) Refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range r.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			alive := r.ping(ctx, m)
			lat := map[string]time.Duration{}
			if alive {
				for _, db := range r.cfg.Databases {
					lctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
					d, err := m.c.Latency(lctx, db)
					cancel()
					if err == nil {
						lat[db] = d
					}
				}
			}
			r.mu.Lock()
			if m.down != !alive {
				r.log.Info("placement: pool state changed", "region", m.c.Region, "up", alive)
			}
			m.down = !alive
			if alive {
				m.lat = lat
			}
			r.mu.Unlock()
		}()
	}
	wg.Wait()
	r.mu.Lock()
	for _, db := range r.cfg.Databases {
		if order := r.orderLocked(db); len(order) > 0 && r.chosen[db] != order[0].c.Region {
			r.chosen[db] = order[0].c.Region
			r.log.Info("placement: database placed", "db", db, "region", order[0].c.Region,
				"origin_latency", order[0].lat[db])
		}
	}
	r.mu.Unlock()
}

func (r *Router) ping(ctx context.Context, m *member) bool {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	if m.c.Ping != nil {
		return m.c.Ping(pctx) == nil
	}
	if len(r.cfg.Databases) == 0 {
		return true
	}
	_, err := m.c.Latency(pctx, r.cfg.Databases[0])
	return err == nil
}

// Choice returns the region that serves db now, or "" when no pool is up.
func (r *Router) Choice(db string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if order := r.orderLocked(db); len(order) > 0 {
		return order[0].c.Region
	}
	return ""
}

// orderLocked returns the live pools for db, best first: any whose tunnel has not just ended
// before those whose has, then the pinned region, then by origin latency (unknown last), then
// in configured order.
func (r *Router) orderLocked(db string) []*member {
	pin := r.cfg.Pins[db]
	var live []*member
	lost := map[*member]bool{}
	for _, m := range r.members {
		if !m.down {
			live = append(live, m)
			if l, ok := m.c.Transport.(interface{ Lost() bool }); ok && l.Lost() {
				lost[m] = true
			}
		}
	}
	slices.SortStableFunc(live, func(a, b *member) int {
		// A pool whose tunnel just ended goes last at once, before a ping marks it down: a
		// session opened meanwhile should not wait for it to come back.
		if lost[a] != lost[b] {
			if lost[b] {
				return -1
			}
			return 1
		}
		if ap, bp := a.c.Region == pin, b.c.Region == pin; ap != bp {
			if ap {
				return -1
			}
			return 1
		}
		al, aok := a.lat[db]
		bl, bok := b.lat[db]
		if aok != bok {
			if aok {
				return -1
			}
			return 1
		}
		return cmp.Compare(al, bl)
	})
	return live
}

func (r *Router) order(db string) []*member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orderLocked(db)
}

// markDown takes m out of rotation until a later Refresh finds it up, if it does not answer
// a ping now.
func (r *Router) markDown(ctx context.Context, m *member) {
	if r.ping(ctx, m) {
		return
	}
	r.mu.Lock()
	if !m.down {
		r.log.Warn("placement: pool unreachable, moving its databases", "region", m.c.Region)
	}
	m.down = true
	r.mu.Unlock()
}

// Profile implements link.Transport with the best pool that answers.
func (r *Router) Profile(ctx context.Context, db string) (link.Profile, error) {
	var errs []error
	for _, m := range r.order(db) {
		p, err := m.c.Transport.Profile(ctx, db)
		if err == nil {
			return p, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.c.Region, err))
		if ctx.Err() != nil {
			break
		}
		r.markDown(ctx, m)
	}
	return link.Profile{}, r.failed(db, errs)
}

// Open implements link.Transport with the best pool that answers. Opening a session runs
// nothing on the origin, so trying the next pool is always safe.
func (r *Router) Open(ctx context.Context, db string, params map[string]string) (link.Stream, error) {
	var errs []error
	for _, m := range r.order(db) {
		s, err := m.c.Transport.Open(ctx, db, params)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.c.Region, err))
		if ctx.Err() != nil {
			break
		}
		r.markDown(ctx, m)
	}
	return nil, r.failed(db, errs)
}

func (r *Router) failed(db string, errs []error) error {
	if len(errs) == 0 {
		return fmt.Errorf("%w for database %q", ErrNoPool, db)
	}
	return fmt.Errorf("%w for database %q: %w", ErrNoPool, db, errors.Join(errs...))
}

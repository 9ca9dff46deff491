package poolend

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// maxCachedAnswer bounds an answer the pool end keeps, as Caching.MaxResultBytes does the
// edge's by default.
const maxCachedAnswer = 50 << 20

// maxTables is the most tables a session's writes are told by name: past it, all of the
// database's (as the tunnel's writes frame).
const maxTables = 256

// Config describes a pool end.
type Config struct {
	// Cache is shared among all the edges' sessions: it answers the units edges hint as
	// cacheable, and reported writes invalidate it. nil: none, every unit goes to the origin.
	Cache *cache.Cache
	// Metrics are the pool end's metrics; nil: unregistered ones.
	Metrics *Metrics
}

// End is a pool end: it wraps the origins of a pool (Origin).
type End struct {
	cfg Config
	m   *Metrics
}

// New returns the pool end for cfg.
func New(cfg Config) *End {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &End{cfg: cfg, m: cfg.Metrics}
}

// Origin returns o, the origin of database db, with the pool end in front of it: its sessions
// offer the pool's cache and report their writes to the pool's other edges.
func (e *End) Origin(db string, o link.Origin) link.Origin {
	if ro, ok := o.(link.RoleOrigin); ok { // any_role: edges look roles up too (roles.go)
		return roleOrigin{origin{e: e, db: db, o: o}, ro}
	}
	return origin{e: e, db: db, o: o}
}

type origin struct {
	e  *End
	db string
	o  link.Origin
}

func (o origin) Profile(ctx context.Context) (link.Profile, error) { return o.o.Profile(ctx) }

func (o origin) Open(ctx context.Context, params map[string]string) (link.Stream, error) {
	inner, err := o.o.Open(ctx, params)
	if err != nil {
		return nil, err
	}
	return newSession(o.e, o.db, params, inner, link.EdgesOf(ctx)), nil
}

// Metrics are the pool end's Prometheus metrics.
type Metrics struct {
	cacheQ *prometheus.CounterVec
}

// NewMetrics creates the pool end's metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{cacheQ: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipstream_pool_cache_queries_total",
		Help: "Units the edges hinted as cacheable, by the pool cache's status: hit (answered without the origin), coalesced (answered with what an identical unit in flight got from the origin) or miss.",
	}, []string{"db", "status"})}
	if reg != nil {
		reg.MustRegister(m.cacheQ)
	}
	return m
}

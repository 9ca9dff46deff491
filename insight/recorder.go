package insight

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/classify"
)

// Unit is one unit of work as a client saw it: from its first message to the ReadyForQuery
// (PostgreSQL) or final packet (MySQL) that ended its answer.
type Unit struct {
	// DB is the database the client is connected to.
	DB string
	// Protocol is Postgres or MySQL.
	Protocol string
	// Query is the text of the unit's (first) statement; "" for units with none (a Sync).
	Query string
	// Start is when the unit's first message arrived; Duration how long its answer took.
	Start    time.Time
	Duration time.Duration
	// Rows is the number of rows answered (or affected), from the command tags.
	Rows int64
	// Statements is the number of statements answered (CommandComplete / OK packets).
	Statements int
	// Status is how the result cache treated the unit ("" when the database is not cached).
	Status cache.Status
	// Failed says the origin (or the edge) answered with an error.
	Failed bool
	// Xacts is the number of transactions the unit ended (a statement outside a transaction
	// block is one), and XactTime their time since they began.
	Xacts    int
	XactTime time.Duration
	// Received and Sent are the bytes read from and written to the client for the unit.
	Received, Sent int64
	// Parses and Binds count the extended-protocol Parse and Bind messages of the unit.
	Parses, Binds int
}

// Config describes a Recorder.
type Config struct {
	// MaxShapes bounds the table of query shapes; 0 means 1000.
	MaxShapes int
	// Registerer, when set, gets the aggregate metrics (per database only).
	Registerer prometheus.Registerer
}

// Recorder keeps the query shapes, the per-database totals and the last two minutes, second
// by second.
type Recorder struct {
	max int

	mu     sync.Mutex
	shapes map[shapeKey]*shape
	dbs    map[dbKey]*Totals // by protocol and database: an embedded database is served over both under one name
	ring   [seriesLen]second
	fps    map[string]fpText // query text -> its shape, so a text seen before costs no parse
	start  time.Time

	latency *prometheus.HistogramVec
	shapesG prometheus.GaugeFunc
}

type shapeKey struct{ db, fp string }

type dbKey struct{ protocol, db string }

type fpText struct{ fp, text string }

// maxFingerprints bounds the memo of fingerprints by query text; it is emptied when full.
const maxFingerprints = 8192

type shape struct {
	key      shapeKey
	protocol string
	text     string
	calls    uint64
	total    time.Duration
	rows     int64
	errors   uint64
	statuses map[cache.Status]uint64
	hist     histogram
	last     time.Time
}

// Totals are one database's counters since the process started, PgBouncer's SHOW STATS
// figures among them.
type Totals struct {
	Xacts, Queries      uint64
	Received, Sent      int64
	XactTime, QueryTime time.Duration
	Parses, Binds       uint64
	Errors              uint64
	Statuses            map[cache.Status]uint64
	hist                histogram
}

// New returns an empty Recorder.
func New(cfg Config) *Recorder {
	if cfg.MaxShapes <= 0 {
		cfg.MaxShapes = 1000
	}
	r := &Recorder{max: cfg.MaxShapes, shapes: make(map[shapeKey]*shape), dbs: make(map[dbKey]*Totals),
		fps: make(map[string]fpText), start: time.Now()}
	r.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slipstream_query_duration_seconds",
		Help:    "Time from a unit of work's first message to the end of its answer, as the client saw it, by database.",
		Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
	}, []string{"db"})
	r.shapesG = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slipstream_query_shapes",
		Help: "Query shapes in the insight table (bounded; per-shape figures are at /api/queries and in SHOW QUERIES).",
	}, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(len(r.shapes))
	})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.latency, r.shapesG)
	}
	return r
}

// Observe counts one unit.
func (r *Recorder) Observe(u Unit) {
	if r == nil {
		return
	}
	r.latency.WithLabelValues(u.DB).Observe(u.Duration.Seconds())
	if u.Query == "" {
		r.observe(u, "", fpText{}, false)
		return
	}
	key := fpKey(u.Protocol, u.Query)
	r.mu.Lock()
	ft, ok := r.fps[key]
	r.mu.Unlock()
	if !ok {
		ft.fp, ft.text = fingerprint(u.Protocol, u.Query) // outside the lock: a parse
	}
	r.observe(u, key, ft, !ok)
}

// fpKey is what the fingerprints are remembered by: for PostgreSQL the text with its
// constants replaced (classify.ShapeKey), so that a query with literals written into it is
// parsed once per shape; a text that does not parse is not remembered under a shape (its name
// is a hash of its own text).
func fpKey(protocol, query string) string {
	if protocol != Postgres {
		return query
	}
	if k, ok := classify.ShapeKey(query, classify.Constants); ok {
		return k
	}
	return query
}

func (r *Recorder) observe(u Unit, key string, ft fpText, remember bool) {
	end := u.Start.Add(u.Duration)
	r.mu.Lock()
	defer r.mu.Unlock()
	if remember && !(key != u.Query && strings.HasPrefix(ft.fp, "unparsed-")) {
		if len(r.fps) >= maxFingerprints {
			clear(r.fps)
		}
		r.fps[key] = ft
	}
	dk := dbKey{u.Protocol, u.DB}
	t := r.dbs[dk]
	if t == nil {
		t = &Totals{Statuses: make(map[cache.Status]uint64)}
		r.dbs[dk] = t
	}
	t.Xacts += uint64(u.Xacts)
	t.Queries += uint64(u.Statements)
	t.Received += u.Received
	t.Sent += u.Sent
	t.XactTime += u.XactTime
	t.QueryTime += u.Duration
	t.Parses += uint64(u.Parses)
	t.Binds += uint64(u.Binds)
	if u.Failed {
		t.Errors++
	}
	if u.Status != "" {
		t.Statuses[u.Status]++
	}
	t.hist.add(u.Duration)
	r.second(end).add(u)

	if ft.fp == "" {
		return
	}
	k := shapeKey{u.DB, ft.fp}
	s := r.shapes[k]
	if s == nil {
		if len(r.shapes) >= r.max {
			r.evict()
		}
		s = &shape{key: k, protocol: u.Protocol, text: ft.text, statuses: make(map[cache.Status]uint64)}
		r.shapes[k] = s
	}
	s.calls++
	s.total += u.Duration
	s.rows += u.Rows
	if u.Failed {
		s.errors++
	}
	if u.Status != "" {
		s.statuses[u.Status]++
	}
	s.hist.add(u.Duration)
	s.last = end
}

// evict drops the shape with the least total time. r.mu is held.
func (r *Recorder) evict() {
	var least *shape
	for _, s := range r.shapes {
		if least == nil || s.total < least.total {
			least = s
		}
	}
	if least != nil {
		delete(r.shapes, least.key)
	}
}

// Shape is one query shape's figures.
type Shape struct {
	Fingerprint string  `json:"fingerprint"`
	Database    string  `json:"database"`
	Protocol    string  `json:"protocol"`
	Query       string  `json:"query"`
	Calls       uint64  `json:"calls"`
	TotalMs     float64 `json:"total_ms"`
	MeanMs      float64 `json:"mean_ms"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	Rows        int64   `json:"rows"`
	Errors      uint64  `json:"errors"`
	// Hits are the calls answered from the cache (fresh or stale); HitRatio is Hits/Calls.
	Hits     uint64  `json:"hits"`
	HitRatio float64 `json:"hit_ratio"`
	// NotCached is why the shape is not cached: the cache status most of its calls had that
	// was neither a hit nor a miss ("volatile", "transaction", "disabled", ...); "" for a
	// cacheable shape (its calls were hits, or misses of answers not kept yet).
	NotCached string                  `json:"not_cached"`
	Statuses  map[cache.Status]uint64 `json:"statuses"`
	LastSeen  time.Time               `json:"last_seen"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Shapes returns the shapes by total time, the largest first, at most limit of them (0: all).
func (r *Recorder) Shapes(limit int) []Shape {
	r.mu.Lock()
	out := make([]Shape, 0, len(r.shapes))
	for _, s := range r.shapes {
		hits := s.statuses[cache.Hit] + s.statuses[cache.Stale]
		sh := Shape{Fingerprint: s.key.fp, Database: s.key.db, Protocol: s.protocol, Query: s.text, Calls: s.calls,
			TotalMs: ms(s.total), MeanMs: ms(s.total) / float64(max(s.calls, 1)), P50Ms: ms(s.hist.quantile(.5)),
			P99Ms: ms(s.hist.quantile(.99)), Rows: s.rows, Errors: s.errors, Hits: hits,
			HitRatio: float64(hits) / float64(max(s.calls, 1)), Statuses: make(map[cache.Status]uint64, len(s.statuses)),
			LastSeen: s.last}
		var most uint64
		for st, n := range s.statuses {
			sh.Statuses[st] = n
			if st != cache.Hit && st != cache.Stale && st != cache.Miss && (n > most || n == most && st < cache.Status(sh.NotCached)) {
				sh.NotCached, most = string(st), n
			}
		}
		out = append(out, sh)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Shape) int {
		if c := cmp.Compare(b.TotalMs, a.TotalMs); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// DBTotals returns a copy of the totals of db served over protocol (Postgres or MySQL; zero
// when nothing was seen), with its p50 and p99.
func (r *Recorder) DBTotals(protocol, db string) (t Totals, p50, p99 time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x := r.dbs[dbKey{protocol, db}]; x != nil {
		t = *x
		t.Statuses = make(map[cache.Status]uint64, len(x.Statuses))
		for k, v := range x.Statuses {
			t.Statuses[k] = v
		}
		p50, p99 = x.hist.quantile(.5), x.hist.quantile(.99)
	}
	return t, p50, p99
}

// Since returns when the recorder started counting.
func (r *Recorder) Since() time.Time { return r.start }

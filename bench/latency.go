package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Patterns and modes of a latency series.
const (
	NewConnection = "new-connection" // connect, authenticate, one query, close: the serverless shape
	Persistent    = "persistent"     // one query at a time on a connection opened beforehand

	Direct   = "direct"   // straight to the database
	Uncached = "uncached" // through Slipstream, the query marked cache=off
	Cached   = "cached"   // through Slipstream, the same query answered from its cache
)

// hotRows is how many distinct point reads a series cycles through; the cached series warms
// all of them first.
const hotRows = 10

// LatencyConfig says what RunLatency measures.
type LatencyConfig struct {
	// Direct is the database's URL as an application reaches it without Slipstream,
	// postgres://... or mysql://... Required.
	Direct string
	// Via is the same database through Slipstream; empty measures the direct path only. Its
	// protocol must be Direct's.
	Via string
	// Setup is where the table is created when missing; empty means Direct. Give the origin
	// itself when a slow path (a relay) stands in front of Direct.
	Setup string
	// Queries is how many timed queries each series runs; zero means 200.
	Queries int
	// RTT is the round-trip time between the application and the database when known (the
	// relay's); zero leaves WANRoundTrips unset.
	RTT time.Duration
	// Progress, if not nil, is called after each query with the queries done and the total
	// of the whole run, from the goroutine that called RunLatency.
	Progress func(done, total int)
}

// RunLatency runs point reads in series: for each pattern (new connection per query, then
// persistent connection), directly, through Slipstream uncached and cached. The series of a
// pattern take turns query by query; one query at a time, each after the previous one's
// answer, so each figure is the latency one client sees. A failed query ends the run with an
// error naming its series.
func RunLatency(ctx context.Context, cfg LatencyConfig) ([]Result, error) {
	if cfg.Direct == "" {
		return nil, errors.New("no direct URL")
	}
	if cfg.Queries == 0 {
		cfg.Queries = 200
	}
	if cfg.Queries < 0 {
		return nil, fmt.Errorf("queries %d is negative", cfg.Queries)
	}
	direct, err := newConnector(cfg.Direct)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	var via connector
	if cfg.Via != "" {
		if via, err = newConnector(cfg.Via); err != nil {
			return nil, fmt.Errorf("via: %w", err)
		}
		if via.protocol() != direct.protocol() {
			return nil, fmt.Errorf("direct speaks %s and via %s: compare one database", direct.protocol(), via.protocol())
		}
	}
	setup := cfg.Setup
	if setup == "" {
		setup = cfg.Direct
	}
	if err := Prepare(ctx, setup); err != nil {
		return nil, err
	}

	type series struct {
		pattern, mode string
		c             connector
		sql           func(i int) string
	}
	plain := func(i int) string { return pointRead(1 + i%hotRows) }
	var plan []series
	for _, pattern := range []string{NewConnection, Persistent} {
		plan = append(plan, series{pattern, Direct, direct, plain})
		if via != nil {
			plan = append(plan,
				series{pattern, Uncached, via, func(i int) string { return uncachedComment + plain(i) }},
				series{pattern, Cached, via, plain})
		}
	}
	if via != nil {
		if err := warmCache(ctx, via); err != nil {
			return nil, fmt.Errorf("warming the cache: %w", err)
		}
	}

	total, done := len(plan)*cfg.Queries, 0
	progress := func() {
		done++
		if cfg.Progress != nil {
			cfg.Progress(done, total)
		}
	}
	// The series of one pattern take turns query by query, so that a slow minute of this
	// shared machine slows all of them alike and the ratios hold.
	var results []Result
	for from := 0; from < len(plan); {
		to := from
		for to < len(plan) && plan[to].pattern == plan[from].pattern {
			to++
		}
		runs := make([]*seriesRun, 0, to-from)
		for _, s := range plan[from:to] {
			runs = append(runs, &seriesRun{name: s.pattern + " " + s.mode, pattern: s.pattern, c: s.c, sql: s.sql})
		}
		err := interleave(ctx, runs, cfg.Queries, progress)
		for _, r := range runs {
			r.close()
		}
		if err != nil {
			return nil, err
		}
		for i, r := range runs {
			results = append(results, summarize(direct.protocol(), plan[from+i].pattern, plan[from+i].mode, r.d))
		}
		from = to
	}
	Derive(results, cfg.RTT)
	return results, nil
}

// warmCache runs every query of a cached series a few times, so that each is in
// Slipstream's cache before the series starts (it stores a key on its first miss, a moment
// later: ristretto's sets are asynchronous).
func warmCache(ctx context.Context, c connector) error {
	s, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	for range 3 {
		for i := range hotRows {
			if err := s.query(ctx, pointRead(1+i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// seriesRun is one series being measured: its latencies so far and, for a persistent
// series, its connection.
type seriesRun struct {
	name    string
	pattern string
	c       connector
	sql     func(i int) string
	s       session // persistent only
	d       []time.Duration
}

// interleave runs query i of every series, then query i+1 of every series, n times. A
// persistent series connects and runs one untimed query first.
func interleave(ctx context.Context, runs []*seriesRun, n int, progress func()) error {
	for _, r := range runs {
		if r.pattern != Persistent {
			continue
		}
		s, err := r.c.connect(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		r.s = s
		if err := s.query(ctx, r.sql(0)); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	for i := range n {
		for _, r := range runs {
			if err := r.one(ctx, i); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			progress()
		}
	}
	return nil
}

// one times query i. A new-connection series times connect and query together and closes
// the connection after the clock stops.
func (r *seriesRun) one(ctx context.Context, i int) error {
	start := time.Now()
	s := r.s
	if s == nil {
		var err error
		if s, err = r.c.connect(ctx); err != nil {
			return err
		}
	}
	err := s.query(ctx, r.sql(i))
	elapsed := time.Since(start)
	if r.s == nil {
		s.close()
	}
	if err != nil {
		return err
	}
	r.d = append(r.d, elapsed)
	return nil
}

func (r *seriesRun) close() {
	if r.s != nil {
		r.s.close()
		r.s = nil
	}
}

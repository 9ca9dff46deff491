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

// RunLatency runs back-to-back point reads in series: for each pattern (new connection per
// query, persistent connection), directly, then through Slipstream uncached and cached.
// Series run one after another, each query after the previous one's answer, so each figure
// is the latency one client sees. A failed query ends the run with an error naming its series.
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
	var results []Result
	for _, s := range plan {
		d, err := runSeries(ctx, s.c, s.pattern, cfg.Queries, s.sql, progress)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.pattern, s.mode, err)
		}
		results = append(results, summarize(direct.protocol(), s.pattern, s.mode, d))
	}
	Derive(results, cfg.RTT)
	return results, nil
}

// warmCache runs every query of a cached series a few times, so that each is in
// Slipstream's cache before the series starts (it stores a key on its second miss).
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

// runSeries times n queries. A new-connection series times connect and query together,
// closing each connection after the clock stops; a persistent series connects and runs one
// untimed query first.
func runSeries(ctx context.Context, c connector, pattern string, n int, sql func(i int) string, progress func()) ([]time.Duration, error) {
	d := make([]time.Duration, 0, n)
	if pattern == NewConnection {
		for i := range n {
			start := time.Now()
			s, err := c.connect(ctx)
			if err != nil {
				return nil, err
			}
			err = s.query(ctx, sql(i))
			elapsed := time.Since(start)
			s.close()
			if err != nil {
				return nil, err
			}
			d = append(d, elapsed)
			progress()
		}
		return d, nil
	}
	s, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.query(ctx, sql(0)); err != nil {
		return nil, err
	}
	for i := range n {
		start := time.Now()
		if err := s.query(ctx, sql(i)); err != nil {
			return nil, err
		}
		d = append(d, time.Since(start))
		progress()
	}
	return d, nil
}

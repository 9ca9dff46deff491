package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one path to the database a workload runs against.
type Target struct {
	Name string // direct, via, pgbouncer, pgpool...
	URL  string
}

// ThroughputConfig says what RunThroughput runs.
type ThroughputConfig struct {
	// Targets run one after another, each for Duration. The one named Direct, if any, is
	// what the others are compared with.
	Targets []Target
	// Clients is how many connections run the workload at once; zero means 16.
	Clients int
	// Duration is how long each target runs; zero means 10 s.
	Duration time.Duration
	// ReadRatio is the share of operations that are point reads, in [0, 1]; the rest update
	// one row. Use 1 for reads only.
	ReadRatio float64
	// HotSet is how many rows the operations pick from, uniformly; zero means 1000.
	HotSet int
	// Setup is where the table is created when missing; empty means the first target.
	Setup string
	// Progress, if not nil, is called about ten times a second with the elapsed and total
	// time of the whole run, from the goroutine that called RunThroughput.
	Progress func(done, total int)
}

// ThroughputResult is one target's run.
type ThroughputResult struct {
	Target    string  `json:"target"`
	Protocol  string  `json:"protocol"`
	Clients   int     `json:"clients"`
	DurationS float64 `json:"duration_s"`
	ReadRatio float64 `json:"read_ratio"`
	HotSet    int     `json:"hot_set"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	P99Ms     float64 `json:"p99_ms"`
	// VsDirect is this target's ops/s over the direct target's; 0 without a direct target.
	VsDirect float64 `json:"vs_direct"`
}

// ThroughputReport is the JSON document of `slipstream bench throughput --json`.
type ThroughputReport struct {
	Results []ThroughputResult `json:"results"`
}

// RunThroughput runs the workload against each target in turn: Clients persistent
// connections, each running operations back to back for Duration, a point read with
// probability ReadRatio and otherwise an update of one row, rows picked uniformly among the
// first HotSet. A connection that fails is counted as an error and reopened.
func RunThroughput(ctx context.Context, cfg ThroughputConfig) ([]ThroughputResult, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no target")
	}
	if cfg.Clients == 0 {
		cfg.Clients = 16
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.HotSet == 0 {
		cfg.HotSet = benchRows
	}
	if cfg.Clients < 0 || cfg.Duration < 0 || cfg.HotSet < 0 || cfg.ReadRatio < 0 || cfg.ReadRatio > 1 {
		return nil, fmt.Errorf("clients %d, duration %v, hot set %d, read ratio %v: out of range",
			cfg.Clients, cfg.Duration, cfg.HotSet, cfg.ReadRatio)
	}
	conns := make([]connector, len(cfg.Targets))
	for i, t := range cfg.Targets {
		c, err := newConnector(t.URL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		if i > 0 && c.protocol() != conns[0].protocol() {
			return nil, fmt.Errorf("%s speaks %s and %s %s: compare one database", cfg.Targets[0].Name, conns[0].protocol(), t.Name, c.protocol())
		}
		conns[i] = c
	}
	setup := cfg.Setup
	if setup == "" {
		setup = cfg.Targets[0].URL
	}
	if err := prepareRows(ctx, setup, cfg.HotSet); err != nil {
		return nil, err
	}
	var results []ThroughputResult
	for i, t := range cfg.Targets {
		progress := func(elapsed time.Duration) {
			if cfg.Progress != nil {
				total := time.Duration(len(cfg.Targets)) * cfg.Duration
				cfg.Progress(int((time.Duration(i)*cfg.Duration+elapsed)/time.Millisecond), int(total/time.Millisecond))
			}
		}
		r, err := runLoad(ctx, conns[i], cfg, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		r.Target = t.Name
		results = append(results, r)
	}
	var direct float64
	for _, r := range results {
		if r.Target == Direct {
			direct = r.OpsPerSec
		}
	}
	if direct > 0 {
		for i := range results {
			results[i].VsDirect = round2(results[i].OpsPerSec / direct)
		}
	}
	return results, nil
}

// runLoad runs the workload against one target.
func runLoad(ctx context.Context, c connector, cfg ThroughputConfig, progress func(time.Duration)) (ThroughputResult, error) {
	// Connect everyone first, so connection setup is not in the figures.
	sessions := make([]session, cfg.Clients)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.close()
			}
		}
	}()
	for i := range sessions {
		s, err := c.connect(ctx)
		if err != nil {
			return ThroughputResult{}, err
		}
		sessions[i] = s
	}
	var ops, errs atomic.Int64
	lat := make([][]time.Duration, cfg.Clients)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	lctx, cancel := context.WithDeadline(ctx, deadline.Add(5*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for time.Now().Before(deadline) && lctx.Err() == nil {
				id := 1 + rng.IntN(cfg.HotSet)
				q := pointRead(id)
				if rng.Float64() >= cfg.ReadRatio {
					q = fmt.Sprintf("UPDATE %s SET v = 'updated %d' WHERE id = %d", benchTable, rng.IntN(1000), id)
				}
				t0 := time.Now()
				if err := sessions[i].query(lctx, q); err != nil {
					errs.Add(1)
					sessions[i].close()
					sessions[i] = nil
					s, err := c.connect(lctx)
					if err != nil {
						return // the error is counted; this client is done
					}
					sessions[i] = s
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				ops.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
			progress(min(time.Since(start), cfg.Duration))
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return ThroughputResult{}, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	s := summarize(c.protocol(), "", "", all)
	return ThroughputResult{
		Protocol: c.protocol(), Clients: cfg.Clients, DurationS: round2(elapsed.Seconds()),
		ReadRatio: cfg.ReadRatio, HotSet: cfg.HotSet, Ops: ops.Load(), Errors: errs.Load(),
		OpsPerSec: round2(float64(ops.Load()) / elapsed.Seconds()),
		P50Ms:     s.P50Ms, P95Ms: s.P95Ms, P99Ms: s.P99Ms,
	}, nil
}

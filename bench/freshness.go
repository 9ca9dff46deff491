package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// FreshnessConfig is one freshness run: writes made straight at the origin (Direct) while
// Clients read the written rows through Via in a loop, each read cacheable.
type FreshnessConfig struct {
	Direct  string        // the origin itself, where the writes go
	Via     string        // Slipstream, where the reads go
	Writes  int           // how many writes; 0: 1000
	Clients int           // concurrent readers; 0: 16
	Rows    int           // rows written and read; 0: 16
	Pace    time.Duration // pause between writes; 0: 5ms
	Bound   time.Duration // a read older than this after a write's commit counts as too stale; 0: 1s
}

// FreshnessResult is what a freshness run measured. Lag is, for each write, the time from its
// commit (the direct client's answer) until the end of the last read through Via that started
// after it and still answered the value from before it: until no client could read the old value.
type FreshnessResult struct {
	Writes     int           `json:"writes"`
	Reads      int64         `json:"reads"`
	StaleReads int64         `json:"stale_reads"`      // reads that started after a write's commit and answered an older value
	OverBound  int64         `json:"reads_over_bound"` // of those, reads that ended more than Bound after the commit
	LagP50     time.Duration `json:"lag_p50_ns"`
	LagP99     time.Duration `json:"lag_p99_ns"`
	LagMax     time.Duration `json:"lag_max_ns"`
	// StartLagP99 and StartLagMax time each write to the start of its last stale read instead
	// of its end: the cache answered that read between the two, so the true time until no
	// client could read the old value lies between StartLag and Lag. What separates them is
	// the read's own time (on a loaded machine, mostly the reader waiting for a CPU).
	StartLagP99 time.Duration `json:"start_lag_p99_ns"`
	StartLagMax time.Duration `json:"start_lag_max_ns"`
	Bound       time.Duration `json:"bound_ns"`
	ZeroLagPart float64       `json:"zero_lag_fraction"` // writes no read ever contradicted
}

// rowWrites is what the writer has committed to one row, oldest first.
type rowWrites struct {
	mu     sync.Mutex
	writes []*freshWrite
}

type freshWrite struct {
	value     int64
	committed time.Time
	lastStale time.Time // the end of the last stale read, zero: none
	lastStart time.Time // the start of the latest-starting stale read
}

// freshTable is the table a freshness run writes and reads.
const freshTable = "slipstream_freshness"

// RunFreshness runs cfg and reports the lag of every write.
func RunFreshness(ctx context.Context, cfg FreshnessConfig) (FreshnessResult, error) {
	cfg.Writes, cfg.Clients, cfg.Rows = cmp0(cfg.Writes, 1000), cmp0(cfg.Clients, 16), cmp0(cfg.Rows, 16)
	if cfg.Pace == 0 {
		cfg.Pace = 5 * time.Millisecond
	}
	if cfg.Bound == 0 {
		cfg.Bound = time.Second
	}
	direct, err := dial(ctx, cfg.Direct)
	if err != nil {
		return FreshnessResult{}, fmt.Errorf("direct: %w", err)
	}
	defer direct.close()
	if err := direct.query(ctx, "DROP TABLE IF EXISTS "+freshTable); err != nil {
		return FreshnessResult{}, err
	}
	if err := direct.query(ctx, "CREATE TABLE "+freshTable+" (id int primary key, v bigint not null)"); err != nil {
		return FreshnessResult{}, err
	}
	defer direct.query(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+freshTable)
	rows := make([]*rowWrites, cfg.Rows)
	for i := range rows {
		if err := direct.query(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%d, 0)", freshTable, i)); err != nil {
			return FreshnessResult{}, err
		}
		rows[i] = &rowWrites{writes: []*freshWrite{{value: 0, committed: time.Now()}}}
	}
	res := FreshnessResult{Writes: cfg.Writes, Bound: cfg.Bound}
	var counts tally
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Clients)
	for c := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readLoop(rctx, cfg, c, rows, &counts); err != nil && rctx.Err() == nil {
				errs <- err
				stop()
			}
		}()
	}
	werr := writeLoop(rctx, cfg, direct, rows)
	time.Sleep(cfg.Bound) // let the last writes' stale reads, if any, show
	stop()
	wg.Wait()
	close(errs)
	if err := errors.Join(append([]error{werr}, collect(errs)...)...); err != nil && ctx.Err() == nil {
		return res, err
	}
	res.Reads, res.StaleReads, res.OverBound = counts.reads, counts.stale, counts.over
	summarizeFreshness(&res, rows)
	return res, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func collect(c chan error) []error {
	var out []error
	for e := range c {
		out = append(out, e)
	}
	return out
}

// writeLoop makes cfg.Writes increments of random rows at the origin, recording each commit.
func writeLoop(ctx context.Context, cfg FreshnessConfig, direct session, rows []*rowWrites) error {
	for i := range cfg.Writes {
		r := rand.IntN(len(rows))
		row := rows[r]
		row.mu.Lock()
		next := row.writes[len(row.writes)-1].value + 1
		row.mu.Unlock()
		if err := direct.query(ctx, fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", freshTable, next, r)); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		committed := time.Now()
		row.mu.Lock()
		row.writes = append(row.writes, &freshWrite{value: next, committed: committed})
		row.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Pace):
		}
	}
	return nil
}

// readLoop reads the rows through Via, in turn, until ctx ends, and marks every write a read
// contradicted: a read that started after the write's commit and answered an older value.
func readLoop(ctx context.Context, cfg FreshnessConfig, client int, rows []*rowWrites, res *tally) error {
	c, err := dial(ctx, cfg.Via)
	if err != nil {
		return fmt.Errorf("via: %w", err)
	}
	defer c.close()
	var reads, stale, over int64
	defer func() {
		res.add(reads, stale, over)
	}()
	for i := client; ctx.Err() == nil; i++ {
		r := i % len(rows)
		start := time.Now()
		v, err := c.readInt(ctx, fmt.Sprintf("SELECT v FROM %s WHERE id = %d", freshTable, r))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		end := time.Now()
		reads++
		row := rows[r]
		row.mu.Lock()
		for j := len(row.writes) - 1; j >= 0 && row.writes[j].value > v; j-- {
			w := row.writes[j]
			if w.committed.After(start) {
				continue // the read may have been answered before this commit
			}
			stale++
			if end.Sub(w.committed) > cfg.Bound {
				over++
			}
			if end.After(w.lastStale) {
				w.lastStale = end
			}
			if start.After(w.lastStart) {
				w.lastStart = start
			}
			break // older writes are contradicted by it as well, and by less
		}
		row.mu.Unlock()
	}
	return nil
}

// tally sums the readers' counts.
type tally struct {
	mu                 sync.Mutex
	reads, stale, over int64
}

func (t *tally) add(reads, stale, over int64) {
	t.mu.Lock()
	t.reads, t.stale, t.over = t.reads+reads, t.stale+stale, t.over+over
	t.mu.Unlock()
}

// summarizeFreshness turns the writes' last stale reads into lags.
func summarizeFreshness(res *FreshnessResult, rows []*rowWrites) {
	var lags, startLags []time.Duration
	zero := 0
	for _, row := range rows {
		for _, w := range row.writes[1:] {
			lag, startLag := time.Duration(0), time.Duration(0)
			if !w.lastStale.IsZero() {
				lag, startLag = w.lastStale.Sub(w.committed), w.lastStart.Sub(w.committed)
			} else {
				zero++
			}
			lags, startLags = append(lags, lag), append(startLags, startLag)
		}
	}
	if len(lags) == 0 {
		return
	}
	slices.Sort(lags)
	slices.Sort(startLags)
	res.LagP50, res.LagP99, res.LagMax = lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
	res.StartLagP99, res.StartLagMax = startLags[len(startLags)*99/100], startLags[len(startLags)-1]
	res.ZeroLagPart = float64(zero) / float64(len(lags))
}

package placement

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Probe connects to addr over TCP n times, one after another, and returns the median connect
// time. A TCP connect costs one round trip, so this is the round-trip time to addr without
// authentication or TLS. It fails only if every connect failed.
func Probe(ctx context.Context, addr string, n int) (time.Duration, error) {
	if n <= 0 {
		n = 5
	}
	var d net.Dialer
	times := make([]time.Duration, 0, n)
	var lastErr error
	for range n {
		start := time.Now()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		times = append(times, time.Since(start))
		c.Close()
	}
	if len(times) == 0 {
		if lastErr == nil {
			lastErr = ctx.Err()
		}
		return 0, fmt.Errorf("placement: probe %s: %w", addr, lastErr)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// Prober keeps the pool side's latency to each origin fresh: what a pool reports to edges.
// Origins without a network address (embedded D1 and KV databases) are at latency zero.
type Prober struct {
	addrs    map[string]string // database -> host:port; "" for embedded
	samples  int
	interval time.Duration

	mu  sync.Mutex
	lat map[string]measured
}

type measured struct {
	d   time.Duration
	err error
	at  time.Time
}

// ErrNotMeasured means the database has no measurement yet.
var ErrNotMeasured = errors.New("placement: origin latency not measured yet")

// NewProber returns a prober for the given databases' origin addresses (host:port, or "" for
// an embedded database). samples connects make one measurement; Run repeats it every interval.
func NewProber(addrs map[string]string, samples int, interval time.Duration) *Prober {
	if interval <= 0 {
		interval = time.Minute
	}
	return &Prober{addrs: addrs, samples: samples, interval: interval, lat: map[string]measured{}}
}

// Measure probes every origin once, concurrently, and records the results.
func (p *Prober) Measure(ctx context.Context) {
	var wg sync.WaitGroup
	for db, addr := range p.addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m measured
			if addr != "" {
				m.d, m.err = Probe(ctx, addr, p.samples)
			}
			m.at = time.Now()
			p.mu.Lock()
			p.lat[db] = m
			p.mu.Unlock()
		}()
	}
	wg.Wait()
}

// Run measures now and then every interval until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.Measure(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Latency returns the last measured latency to db's origin.
func (p *Prober) Latency(db string) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.lat[db]
	if !ok {
		if _, known := p.addrs[db]; !known {
			return 0, fmt.Errorf("placement: no database %q on this pool", db)
		}
		return 0, ErrNotMeasured
	}
	return m.d, m.err
}

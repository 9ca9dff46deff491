package placement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// Probe measures the round trip to a database server at addr n times, one after another, and
// returns the median. Each sample opens a TCP connection and times one exchange that costs the
// server no work: for "postgres", an SSLRequest and its one-byte answer; for "mysql", the
// server's greeting; for anything else, the TCP connect itself. Timing the exchange rather than
// the connect keeps middleboxes that accept locally (a load balancer, a relay) from hiding the
// distance. It fails only if every sample failed.
func Probe(ctx context.Context, addr, protocol string, n int) (time.Duration, error) {
	if n <= 0 {
		n = 5
	}
	times := make([]time.Duration, 0, n)
	var lastErr error
	for range n {
		d, err := probeOnce(ctx, addr, protocol)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		times = append(times, d)
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

// sslRequest is PostgreSQL's SSLRequest: length 8, code 80877103.
var sslRequest = []byte{0, 0, 0, 8, 4, 210, 22, 47}

func probeOnce(ctx context.Context, addr, protocol string) (time.Duration, error) {
	var d net.Dialer
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	switch protocol {
	case "postgres":
		start = time.Now()
		if _, err := c.Write(sslRequest); err != nil {
			return 0, err
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return 0, err
		}
		if b[0] != 'S' && b[0] != 'N' {
			return 0, fmt.Errorf("not a PostgreSQL server: answered %q to SSLRequest", b[0])
		}
	case "mysql":
		start = time.Now() // the greeting comes unasked, so this is at most one round trip late
		var b [4]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// Prober keeps the pool side's latency to each origin fresh: what a pool reports to edges.
// Origins without a network address (embedded D1 and KV databases) are at latency zero.
type Prober struct {
	addrs    map[string]Target // database -> where its origin is
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

// Target is where a database's origin listens and what it speaks; an embedded database has an
// empty Addr.
type Target struct {
	Addr     string // host:port
	Protocol string // "postgres", "mysql"
}

// NewProber returns a prober for the given databases' origins. samples exchanges make one
// measurement; Run repeats it every interval.
func NewProber(addrs map[string]Target, samples int, interval time.Duration) *Prober {
	if interval <= 0 {
		interval = time.Minute
	}
	return &Prober{addrs: addrs, samples: samples, interval: interval, lat: map[string]measured{}}
}

// Measure probes every origin once, concurrently, and records the results.
func (p *Prober) Measure(ctx context.Context) {
	var wg sync.WaitGroup
	for db, t := range p.addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m measured
			if t.Addr != "" {
				m.d, m.err = Probe(ctx, t.Addr, t.Protocol, p.samples)
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

// Measured wraps a pool's origin so that its Profile reports the prober's latency to db's
// origin: how a pool tells edges how near it is.
func Measured(o link.Origin, p *Prober, db string) link.Origin {
	if ro, ok := o.(link.RoleOrigin); ok { // any_role: edges look roles up too
		return measuredRoleOrigin{measuredOrigin{Origin: o, p: p, db: db}, ro}
	}
	return measuredOrigin{Origin: o, p: p, db: db}
}

type measuredOrigin struct {
	link.Origin
	p  *Prober
	db string
}

func (m measuredOrigin) Profile(ctx context.Context) (link.Profile, error) {
	prof, err := m.Origin.Profile(ctx)
	if err != nil {
		return prof, err
	}
	// A pool that could not measure says so (-1) rather than claim to be next to the origin.
	prof.OriginLatency = -1
	if d, err := m.p.Latency(m.db); err == nil {
		prof.OriginLatency = d
	}
	return prof, nil
}

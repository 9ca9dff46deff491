package changes

import (
	"context"
	"sync"
	"time"
)

// probeEvery is how often the origin's position is read (on a connection of the probe's own)
// to see whether the stream keeps up with it.
const probeEvery = time.Second

// minProbeLag is the least time a probe is given to be reached, whatever MaxLag: between
// transactions a PostgreSQL stream learns the walsender's position once per statusEvery.
const minProbeLag = 2 * statusEvery

// probeLag is how long the stream has to reach a probe.
func (h *health) probeLag() time.Duration { return max(h.cfg.MaxLag, minProbeLag) }

// suspendEarly is how long before a probe's max_lag runs out the stream is suspended: the
// health ticks every suspendTick, and a read served after the deadline counts as served
// while behind (cache.DBStats.ReadsBehind).
const suspendEarly = 2 * suspendTick

// mark is one probe: when it was taken, and whether the stream has applied what the origin
// held then (nil while the origin has not answered, or when it failed: never reached).
type mark struct {
	at      time.Time
	reached func() bool
}

// probes are a stream's outstanding marks, oldest first. A stream is behind by more than
// max_lag when a mark taken more than max_lag (at least minProbeLag) ago is not reached: what
// the origin had committed then has not been delivered. Positions only grow, so a reached mark vouches for every
// earlier one too, failed probes included.
type probes struct {
	mu   sync.Mutex
	list []*mark
}

// take records a probe taken now; answered fills in how to tell it is reached.
func (p *probes) take(now time.Time) *mark {
	m := &mark{at: now}
	p.mu.Lock()
	p.list = append(p.list, m)
	p.mu.Unlock()
	return m
}

func (p *probes) answered(m *mark, reached func() bool) {
	p.mu.Lock()
	m.reached = reached
	p.mu.Unlock()
}

// oldest drops the marks the stream has reached (and every one before a reached one) and
// returns when the oldest outstanding one was taken.
func (p *probes) oldest() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.list) - 1; i >= 0; i-- {
		if r := p.list[i].reached; r != nil && r() {
			p.list = p.list[i+1:]
			break
		}
	}
	if len(p.list) == 0 {
		return time.Time{}, false
	}
	return p.list[0].at, true
}

// reset forgets every mark: a new connection catches up with a target of its own.
func (p *probes) reset() {
	p.mu.Lock()
	p.list = nil
	p.mu.Unlock()
}

// probeLoop reads the origin's position every probeEvery until ctx ends: each answer is the
// stream's lag in bytes, and a mark the health watches.
func (h *health) probeLoop(ctx context.Context, src source) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		m := h.probes.take(time.Now())
		pctx, cancel := context.WithTimeout(ctx, h.probeLag())
		bytes, reached, err := src.probe(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// The mark stays unreached: if no later probe is answered within max_lag, the
			// stream can't show it is current and is suspended.
			h.cfg.Logger.Debug("change stream: reading the origin's position failed", "db", h.cfg.DB, "err", err)
		default:
			h.probes.answered(m, reached)
			h.cfg.Metrics.lagBytes(h.cfg.DB, bytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watch is the health's tick while the stream is current: it tells the Sink until when the
// stream vouches for the database's answers, and suspends it once a probe is about to be
// max_lag old unreached (the stream then ends with errBehind and reconnects).
func (h *health) watch(now time.Time) {
	oldest, pending := h.probes.oldest()
	until := now.Add(h.probeLag()) // a probe taken from now on is due no earlier
	if pending {
		until = oldest.Add(h.probeLag())
	}
	if now.After(until.Add(-suspendEarly)) {
		h.mu.Lock()
		h.behind = true
		h.mu.Unlock()
		h.suspend()
		return
	}
	h.cfg.Sink.CurrentUntil(h.cfg.DB, until)
}

// fellBehind reports (once) that watch suspended the stream for a probe it did not reach.
func (h *health) fellBehind() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.behind
	h.behind = false
	return b
}

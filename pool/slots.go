package pool

import (
	"context"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// Slotted is an origin connection as Slots sees it. Slots calls these methods, except Close, with
// its lock held and while no session uses the connection (or from the session releasing it).
type Slotted[K comparable] interface {
	// SlotKey is what the connection was opened with that a session must match to use it.
	SlotKey() K
	// Created is when the connection was dialled.
	Created() time.Time
	// IdleSince is when the connection was last released to the idle list.
	IdleSince() time.Time
	SetIdleSince(time.Time)
	// Broken says the connection failed in use: never hand it out again.
	Broken() bool
	// Retired says the connection holds state nobody may inherit, or was opened with a retired
	// Credential: close it on release, and when idle.
	Retired() bool
	// Dead reports, without blocking and without a round trip, that the origin closed the idle
	// connection or sent something unasked on it (health.go): close it, never hand it out.
	Dead() bool
	// Close ends the connection politely.
	Close()
}

// SlotsConfig are the limits of one database's origin connections.
type SlotsConfig struct {
	// Name labels the database in metrics.
	Name string
	// MaxConns bounds the connections to the origin; 0 means 20.
	MaxConns int
	// QueueTimeout bounds how long a session waits for a connection; 0 means 30s.
	QueueTimeout time.Duration
	// IdleTimeout closes connections idle for longer; 0 means 10 minutes.
	IdleTimeout time.Duration
	// MaxLifetime retires connections older than this when they are next released; 0 means 1 hour.
	MaxLifetime time.Duration
	// Metrics, when set, counts waits, queue timeouts, connect errors and broken connections.
	Metrics *SlotMetrics
}

// Slots counts and hands out the origin connections of one database; the pool of each protocol
// dials them and Slots does the rest.
//
// Connections are counted from the moment one is dialled until it is closed, so the origin never
// sees more than MaxConns. Each connection has a key (K) and serves only sessions with that key
// (the PostgreSQL pool has one key, struct{}). Sessions that find none free wait in FIFO order
// (waiters): a release hands its connection straight to the first waiter, or, when the keys
// differ or the connection is unfit, closes it and hands over the right to dial.
//
// Backpressure: the waiters queue is filled by Take when every slot is taken and emptied by
// releases, closes and the queue timeout; it is bounded by the number of sessions.
type Slots[C Slotted[K], K comparable] struct {
	cfg SlotsConfig
	m   *slotsMetrics

	mu      sync.Mutex
	idle    []C // most recently used last
	total   int // dialling, leased and idle
	waiters []*waiter[C, K]
	closed  bool
	gate    pauseGate // PAUSE and RECONNECT (pause.go)

	done chan struct{}
	wg   sync.WaitGroup
}

// waiter is a session waiting for a connection: it receives one with its key, or the zero C
// with dial set (the right to dial).
type waiter[C any, K comparable] struct {
	key K
	ch  chan handOver[C]
}

type handOver[C any] struct {
	c    C
	dial bool
}

// NewSlots returns the slots of one database and starts their reaper, which Close stops.
func NewSlots[C Slotted[K], K comparable](cfg SlotsConfig) *Slots[C, K] {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 20
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = time.Hour
	}
	s := &Slots[C, K]{cfg: cfg, m: cfg.Metrics.forDB(cfg.Name), done: make(chan struct{})}
	s.m.register(cfg.Name, s)
	s.wg.Add(1)
	go s.reap()
	return s
}

// Stats are the pool's connection counts.
type Stats struct {
	InUse, Idle, Waiting int
}

// Stats returns the current connection counts.
func (s *Slots[C, K]) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{InUse: s.total - len(s.idle), Idle: len(s.idle), Waiting: len(s.waiters)}
}

// Take leases a connection with key k: an idle one, or the right to dial a new one if the pool
// is under its limit (closing an idle connection of another key to make room), or the next one
// released, waiting in line for at most the queue timeout. With dial set the caller owns a
// counted slot and dials; it calls DialFailed if that fails.
func (s *Slots[C, K]) Take(ctx context.Context, k K) (c C, dial bool, err error) {
	if err := s.holdLease(ctx); err != nil {
		return c, false, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return c, false, link.ErrClosed
	}
	if c, ok := s.popIdle(k); ok {
		s.mu.Unlock()
		return c, false, nil
	}
	if s.total >= s.cfg.MaxConns && len(s.idle) > 0 {
		// Make room: the least recently used idle connection has the wrong key.
		old := s.idle[0]
		s.idle = s.idle[1:]
		s.total--
		go old.Close()
	}
	if s.total < s.cfg.MaxConns {
		s.total++
		s.mu.Unlock()
		return c, true, nil
	}
	w := &waiter[C, K]{key: k, ch: make(chan handOver[C], 1)}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	start := time.Now()
	timer := time.NewTimer(s.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case h := <-w.ch:
		s.m.observeWait(time.Since(start))
		s.gate.waited.Add(int64(time.Since(start)))
		return h.c, h.dial, nil
	case <-timer.C:
		err = link.ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.done:
		err = link.ErrClosed
	}
	s.m.observeWait(time.Since(start))
	s.gate.waited.Add(int64(time.Since(start)))
	s.mu.Lock()
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			s.mu.Unlock()
			if err == link.ErrQueueTimeout {
				s.m.queueTimeouts.Inc()
			}
			return c, false, err
		}
	}
	s.mu.Unlock()
	// A release or close picked us just as we gave up: pass it on.
	if h := <-w.ch; !h.dial {
		s.Release(h.c)
	} else {
		s.mu.Lock()
		s.total--
		s.handOverSlot()
		s.mu.Unlock()
	}
	return c, false, err
}

// popIdle returns the most recently used idle connection with key k that is still fit. s.mu
// is held.
func (s *Slots[C, K]) popIdle(k K) (C, bool) {
	for i := len(s.idle) - 1; i >= 0; i-- {
		c := s.idle[i]
		if c.SlotKey() != k {
			continue
		}
		s.idle = append(s.idle[:i], s.idle[i+1:]...)
		dead := c.Dead()
		if !dead && time.Since(c.Created()) < s.cfg.MaxLifetime && !c.Retired() && !s.retired(c) {
			return c, true
		}
		if dead {
			s.m.brokenConns.Inc()
		}
		s.total--
		go c.Close()
	}
	var none C
	return none, false
}

// DialFailed gives back the slot of a Take whose dial failed, to the next waiter if any.
func (s *Slots[C, K]) DialFailed() {
	s.mu.Lock()
	s.total--
	s.handOverSlot()
	s.mu.Unlock()
	s.m.connectErrors.Inc()
}

// handOverSlot gives a freed slot to the first waiter, which will dial. s.mu is held and
// s.total already excludes the freed connection.
func (s *Slots[C, K]) handOverSlot() {
	if len(s.waiters) > 0 && s.total < s.cfg.MaxConns {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		s.total++
		w.ch <- handOver[C]{dial: true}
	}
}

// Release returns a leased connection. A broken or retired connection is closed instead, and
// its slot goes to the next waiter; so is one whose key the next waiter does not want.
func (s *Slots[C, K]) Release(c C) {
	s.mu.Lock()
	if c.Broken() || c.Retired() || s.closed || time.Since(c.Created()) >= s.cfg.MaxLifetime || s.retired(c) ||
		s.total > s.cfg.MaxConns || (len(s.waiters) > 0 && s.waiters[0].key != c.SlotKey()) {
		if s.retired(c) {
			s.gate.retiring--
		}
		s.total--
		s.handOverSlot()
		s.mu.Unlock()
		if c.Broken() {
			s.m.brokenConns.Inc()
		}
		c.Close()
		return
	}
	if len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		s.mu.Unlock()
		w.ch <- handOver[C]{c: c}
		return
	}
	c.SetIdleSince(time.Now())
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

// EachIdle calls f with each idle connection, the least recently used first, under the lock:
// f must not call back into s.
func (s *Slots[C, K]) EachIdle(f func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.idle {
		f(c)
	}
}

// reap closes connections that sat idle past the idle timeout, lived past their lifetime, or
// that the origin closed while they sat idle (checked every second: a dead connection's slot
// goes to whoever waits, and the next Take dials a live one).
func (s *Slots[C, K]) reap() {
	defer s.wg.Done()
	every := min(max(s.cfg.IdleTimeout/4, 100*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			for _, c := range s.reapIdle(now) {
				c.Close()
			}
		}
	}
}

// reapIdle takes the idle connections that must go off the idle list and hands their slots on.
func (s *Slots[C, K]) reapIdle(now time.Time) (old []C) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.idle[:0]
	for _, c := range s.idle {
		switch {
		case c.Dead():
			s.m.brokenConns.Inc()
			old = append(old, c)
		case now.Sub(c.IdleSince()) >= s.cfg.IdleTimeout || now.Sub(c.Created()) >= s.cfg.MaxLifetime || c.Retired():
			old = append(old, c)
		default:
			keep = append(keep, c)
		}
	}
	clear(s.idle[len(keep):])
	s.idle = keep
	s.total -= len(old)
	for range old {
		s.handOverSlot()
	}
	return old
}

// Close closes the idle connections and refuses new leases; leased connections are closed as
// they come back.
func (s *Slots[C, K]) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	idle := s.idle
	s.idle = nil
	s.total -= len(idle)
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
	for _, c := range idle {
		c.Close()
	}
}

// CloseIdleRetired closes the idle connections that say they are retired (their credential was
// replaced) and gives their slots to waiters.
func (s *Slots[C, K]) CloseIdleRetired() { s.closeIdleIf(C.Retired) }

// CloseIdle closes every idle connection and gives their slots to waiters: another pool
// sharing a cap with this one (a database's roles, RolesConfig.MaxDBConns) needs a connection.
func (s *Slots[C, K]) CloseIdle() { s.closeIdleIf(func(C) bool { return true }) }

// closeIdleIf closes the idle connections that close says to.
func (s *Slots[C, K]) closeIdleIf(close func(C) bool) {
	var old []C
	s.mu.Lock()
	keep := s.idle[:0]
	for _, c := range s.idle {
		if close(c) {
			old = append(old, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(s.idle[len(keep):])
	s.idle = keep
	s.total -= len(old)
	for range old {
		s.handOverSlot()
	}
	s.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
}

package pool

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// pauseGate holds new leases while the admin console has the pool paused (PAUSE), remembers
// the time before which connections are retired (RECONNECT), and adds up the queue's waits
// (SHOW STATS). Slots owns one; its fields but waited are under Slots.mu.
type pauseGate struct {
	held         chan struct{} // non-nil while paused; closed by Resume
	retireBefore time.Time     // connections dialled before this are closed, not reused
	retiring     int           // leased connections dialled before retireBefore, not back yet
	waited       atomic.Int64  // nanoseconds sessions spent queued for a connection (SHOW STATS' wait_time)
}

// Waited returns the time sessions have spent queued for a connection, all told.
func (s *Slots[C, K]) Waited() time.Duration { return time.Duration(s.gate.waited.Load()) }

// holdLease waits while the slots are paused, for ctx, or until they close.
func (s *Slots[C, K]) holdLease(ctx context.Context) error {
	s.mu.Lock()
	held := s.gate.held
	s.mu.Unlock()
	if held == nil {
		return nil
	}
	select {
	case <-held:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return link.ErrClosed
	}
}

// retired reports whether c was dialled before the last Reconnect. s.mu is held.
func (s *Slots[C, K]) retired(c C) bool { return c.Created().Before(s.gate.retireBefore) }

// pauseCheck is how often Pause looks whether the last lease has come back.
const pauseCheck = 10 * time.Millisecond

// Pause holds every new lease, waits until each leased connection is back (the transactions
// in flight have ended), then closes the idle ones, as PgBouncer's PAUSE does: the origin may
// then restart or fail over and, after Resume, sessions go on with new connections and no
// error. It returns early with ctx's error, the slots staying paused.
func (s *Slots[C, K]) Pause(ctx context.Context) error {
	s.mu.Lock()
	if s.gate.held == nil {
		s.gate.held = make(chan struct{})
	}
	s.mu.Unlock()
	t := time.NewTicker(pauseCheck)
	defer t.Stop()
	for {
		s.mu.Lock()
		leased := s.total - len(s.idle)
		s.mu.Unlock()
		if leased == 0 {
			break
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return link.ErrClosed
		}
	}
	s.closeIdle()
	return nil
}

// Resume lets held leases go on (RESUME).
func (s *Slots[C, K]) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate.held != nil {
		close(s.gate.held)
		s.gate.held = nil
	}
}

// Paused reports whether new leases are held.
func (s *Slots[C, K]) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gate.held != nil
}

// Reconnect closes the idle connections now and each leased one when it comes back
// (RECONNECT), so that sessions go on with new connections (after the origin's address or
// settings changed).
func (s *Slots[C, K]) Reconnect() {
	s.mu.Lock()
	s.gate.retireBefore = time.Now()
	s.gate.retiring = s.total - len(s.idle)
	s.mu.Unlock()
	s.closeIdle()
}

// closeIdle closes every idle connection.
func (s *Slots[C, K]) closeIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.total -= len(idle)
	for range idle {
		s.handOverSlot()
	}
	s.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// WaitClose waits until no connection dialled before the last Reconnect is left (WAIT_CLOSE),
// or ctx ends.
func (s *Slots[C, K]) WaitClose(ctx context.Context) error {
	t := time.NewTicker(pauseCheck)
	defer t.Stop()
	for {
		s.mu.Lock()
		left := s.gate.retiring
		s.mu.Unlock()
		if left <= 0 {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return nil
		}
	}
}

package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// slot is a connection Slots can count: the smallest Slotted, for tests of Slots alone.
type slot struct {
	created, idle time.Time
	closed        atomic.Bool
}

func (c *slot) SlotKey() struct{}        { return struct{}{} }
func (c *slot) Created() time.Time       { return c.created }
func (c *slot) IdleSince() time.Time     { return c.idle }
func (c *slot) SetIdleSince(t time.Time) { c.idle = t }
func (c *slot) Broken() bool             { return false }
func (c *slot) Retired() bool            { return false }
func (c *slot) Dead() bool               { return false }
func (c *slot) Close()                   { c.closed.Store(true) }

// take leases a connection, dialling (making) one when Slots says so.
func take(ctx context.Context, s *Slots[*slot, struct{}]) (*slot, error) {
	c, dial, err := s.Take(ctx, struct{}{})
	if dial {
		return &slot{created: time.Now()}, nil
	}
	return c, err
}

func TestPauseWaitsForLeasesHoldsNewOnesAndClosesIdleConnections(t *testing.T) {
	s := NewSlots[*slot](SlotsConfig{Name: "t", MaxConns: 2, QueueTimeout: time.Second})
	defer s.Close()
	ctx := context.Background()
	leased, _ := take(ctx, s)
	idle, _ := take(ctx, s)
	s.Release(idle)

	paused := make(chan error, 1)
	go func() { paused <- s.Pause(ctx) }()
	select {
	case err := <-paused:
		t.Fatalf("Pause returned (%v) while a connection was leased", err)
	case <-time.After(3 * pauseCheck):
	}
	if !s.Paused() {
		t.Fatal("not paused")
	}
	// A new lease is held, not refused.
	hctx, cancel := context.WithTimeout(ctx, 5*pauseCheck)
	defer cancel()
	if _, err := take(hctx, s); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a lease while paused: %v, want it held until its context ends", err)
	}
	s.Release(leased)
	if err := <-paused; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.InUse+st.Idle != 0 || !idle.closed.Load() || !leased.closed.Load() {
		t.Errorf("after Pause: %+v, idle closed %v, leased closed %v; want no connection left", st, idle.closed.Load(), leased.closed.Load())
	}
	got := make(chan error, 1)
	go func() {
		c, err := take(ctx, s)
		if err == nil {
			s.Release(c)
		}
		got <- err
	}()
	s.Resume()
	if err := <-got; err != nil {
		t.Fatalf("a lease after Resume: %v", err)
	}
}

func TestReconnectRetiresOldConnectionsAndWaitCloseWaitsForThem(t *testing.T) {
	s := NewSlots[*slot](SlotsConfig{Name: "t", MaxConns: 2})
	defer s.Close()
	ctx := context.Background()
	a, _ := take(ctx, s)
	b, _ := take(ctx, s)
	s.Release(b)
	s.Reconnect()
	if !b.closed.Load() {
		t.Error("the idle connection was not closed at once")
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitClose(ctx) }()
	select {
	case <-done:
		t.Fatal("WaitClose returned while an old connection was leased")
	case <-time.After(3 * pauseCheck):
	}
	s.Release(a)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !a.closed.Load() {
		t.Error("the old leased connection went back to the pool instead of closing")
	}
}

func TestWaitedAddsUpTheQueuesWaits(t *testing.T) {
	const timeout = 20 * time.Millisecond
	s := NewSlots[*slot](SlotsConfig{Name: "t", MaxConns: 1, QueueTimeout: timeout})
	defer s.Close()
	ctx := context.Background()
	a, _ := take(ctx, s)
	defer s.Release(a)
	if _, err := take(ctx, s); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("a second lease of one connection: %v, want the queue timeout", err)
	}
	if w := s.Waited(); w < timeout {
		t.Errorf("Waited %v, want at least the %v the second lease queued", w, timeout)
	}
}

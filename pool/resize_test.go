package pool

import (
	"context"
	"testing"
	"time"
)

func TestSetMaxConnsGrowingServesTheClientWaitingInLine(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 10 * time.Second})
	ctx := context.Background()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(c)
	got := make(chan error, 1)
	go func() {
		c2, err := p.Acquire(ctx)
		if err == nil {
			p.Release(c2)
		}
		got <- err
	}()
	for p.Stats().Waiting == 0 {
		select {
		case err := <-got:
			t.Fatalf("the second Acquire did not wait: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	p.SetMaxConns(2)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the waiting Acquire, after the pool grew: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Acquire was not served after the pool grew")
	}
}

func TestSetMaxConnsShrinkingClosesConnectionsAsTheyComeBack(t *testing.T) {
	p := newPool(t, Config{MaxConns: 3, QueueTimeout: 10 * time.Second})
	ctx := context.Background()
	var leased []*Conn
	for range 3 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		leased = append(leased, c)
	}
	p.Release(leased[2]) // one idle
	p.SetMaxConns(1)
	if s := p.Stats(); s.Idle != 0 || s.InUse != 2 {
		t.Errorf("after shrinking to 1: %+v, want the idle connection closed and the 2 leased ones kept", s)
	}
	p.Release(leased[0])
	p.Release(leased[1])
	if s := p.Stats(); s.InUse+s.Idle > 1 {
		t.Errorf("after both came back: %+v, want at most 1 connection", s)
	}
}

package pool

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// terminate ends the origin backends with these pids, as an operator or an idle reaper would,
// and waits until PostgreSQL no longer lists them.
func terminate(t *testing.T, pids ...uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, srv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, pid := range pids {
		if _, err := admin.Exec(ctx, "select pg_terminate_backend($1)", int32(pid)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var n int
		err := admin.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = any($1)", pidsOf(pids)).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the terminated backends are still listed")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func pidsOf(pids []uint32) []int32 {
	out := make([]int32, len(pids))
	for i, p := range pids {
		out[i] = int32(p)
	}
	return out
}

func TestDeadSaysWhetherTheOriginClosedAnIdleConnection(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(c)
	if c.Dead() {
		t.Fatal("a live idle connection is reported dead")
	}
	terminate(t, c.pid) // returns once the backend has exited, and so closed its socket
	if !c.Dead() {
		t.Fatal("a terminated connection is still reported alive")
	}
}

func TestTakeNeverHandsOutAConnectionTheOriginClosedWhileIdle(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	ctx := context.Background()
	a, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Release(a)
	p.Release(b)
	terminate(t, a.pid, b.pid)
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(c)
	if c == a || c == b {
		t.Fatal("Acquire handed out a connection the origin had closed")
	}
	if c.Dead() {
		t.Fatal("the new connection is dead")
	}
}

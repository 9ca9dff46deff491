package e2e

// The handover upgrade end to end (SIGUSR2, handover.go): real processes, real signals, real
// PostgreSQL, pgbench and pgx as the clients.

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// handOver sends SIGUSR2 to the process that serves now (the child or the last successor)
// and waits until the next one serves in its place, and the old one has handed over or
// drained every session and exited; it returns the new process's id.
func (c *child) handOver(t *testing.T, ctx context.Context) int {
	t.Helper()
	before := len(c.successors())
	current := c.cmd.Process.Pid
	if before > 0 {
		current = c.successors()[before-1]
	}
	if err := syscall.Kill(current, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if err := eventually(ctx, func() error {
		if len(c.successors()) == before {
			return fmt.Errorf("no new process serves after SIGUSR2 to %d", current)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, c.stderr.String())
	}
	next := c.successors()[before]
	c.notes.wait(t, fmt.Sprintf("MAINPID=%d", next))
	// Each process logs "handover: done" as it exits.
	if err := eventually(ctx, func() error {
		if n := strings.Count(c.stderr.String(), "handover: done"); n <= before {
			return fmt.Errorf("the old process %d has not finished its handover", current)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, c.stderr.String())
	}
	if before == 0 {
		c.wait(t, 10*time.Second)
	}
	return next
}

// stopLast sends SIGTERM to the process that serves now, the last successor, and waits until
// it has exited.
func (c *child) stopLast(t *testing.T, ctx context.Context) {
	t.Helper()
	pids := c.successors()
	syscall.Kill(pids[len(pids)-1], syscall.SIGTERM)
	select {
	case <-c.outputDone:
	case <-ctx.Done():
		t.Fatalf("the last process did not exit after SIGTERM:\n%s", c.stderr.String())
	}
}

// holdSession connects a pgx session to url that sets statement_timeout and prepares
// held_stmt, state a handover must move with it (checkHeld).
func holdSession(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	held := connectMode(t, ctx, url, pgx.QueryExecModeCacheStatement)
	if _, err := held.Exec(ctx, "set statement_timeout = '4321ms'"); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Prepare(ctx, "held_stmt", "select $1::int + 1"); err != nil {
		t.Fatal(err)
	}
	return held
}

// checkHeld checks that a session of holdSession still has its state.
func checkHeld(t *testing.T, ctx context.Context, held *pgx.Conn, when string) {
	t.Helper()
	var timeout string
	if err := held.QueryRow(ctx, "show statement_timeout").Scan(&timeout); err != nil || timeout != "4321ms" {
		t.Errorf("%s: statement_timeout %q (%v), want the session's 4321ms", when, timeout, err)
	}
	var n int
	if err := held.QueryRow(ctx, "held_stmt", 41).Scan(&n); err != nil || n != 42 {
		t.Errorf("%s: the prepared statement: %d (%v), want 42", when, n, err)
	}
}

// TestUpgradeWithHandoverKeepsPersistentClients: under pgbench, persistent and one connection
// per transaction, the process is upgraded twice with SIGUSR2. No transaction fails and no
// persistent client is dropped: each idle session moves to the new process with its
// connection. A pgx session's setting, prepared statement and cancel key move with it; a TLS
// session is drained (57P01), as it would be without the handover.
//
// SLIPSTREAM_UPGRADE_SECONDS=30 makes it the measurement of deploy/README.md (16 clients
// each, 30 s); the default is a short run.
func TestUpgradeWithHandoverKeepsPersistentClients(t *testing.T) {
	t.Parallel()
	clients, seconds := upgradeLoad("10")
	ctx := testContext(t, 180*time.Second)
	cfg := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", `shutdown_timeout = "30s"`, appDatabase(pgtest.AppDB))
	c := startChild(t, pgtest.AppDB, "serve", "--config", cfg, "--data-dir", t.TempDir())
	table := "handover_" + suffix()
	script := lifecycleScript(t, ctx, table)
	plain := withQuery(c.PGURL, "sslmode", "disable")
	perConn := startPgbench(t, ctx, plain, script, "-C", "-c", clients, "-j", "4", "-T", seconds)
	persistent := startPgbench(t, ctx, plain, script, "-c", clients, "-j", "4", "-T", seconds)

	held := holdSession(t, ctx, plain)
	encrypted := connect(t, ctx, withQuery(c.PGURL, "sslmode", "require"))
	if _, err := encrypted.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	waitForLoad(t, ctx, table, 20)

	c.handOver(t, ctx)
	checkHeld(t, ctx, held, "after the first handover")
	if _, err := encrypted.Exec(ctx, "select 1"); sqlstate(err) != "57P01" && (err == nil || pgconnSafe(err)) {
		t.Errorf("the TLS session after the handover: %v, want 57P01 admin_shutdown or a closed connection", err)
	}
	waitForLoad(t, ctx, table, 40)

	c.handOver(t, ctx)
	checkHeld(t, ctx, held, "after the second handover")
	// The cancel key the client got from the first process cancels its query in the third.
	direct := connect(t, ctx, directURL())
	go func() { // once the query runs on the origin
		eventually(ctx, func() error {
			var n int
			direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(3)' and state = 'active'").Scan(&n)
			if n == 0 {
				return fmt.Errorf("not running yet")
			}
			return nil
		})
		held.PgConn().CancelRequest(ctx)
	}()
	if _, err := held.Exec(ctx, "select pg_sleep(3)"); sqlstate(err) != "57014" {
		t.Errorf("a query cancelled with the first process's key after two handovers: %v, want 57014", err)
	}

	t.Logf("%s", perConn.wait(t, "pgbench -C -c "+clients+" -T "+seconds+" through two handovers", true))
	t.Logf("%s", persistent.wait(t, "pgbench -c "+clients+" -T "+seconds+" (persistent) through two handovers", true))
	if out := string(persistent.out); strings.Contains(out, "aborted") {
		t.Errorf("persistent clients were dropped:\n%s", out)
	}
	c.stopLast(t, ctx)
	if n := strings.Count(c.stderr.String(), "drained: every session has ended"); n != 3 {
		t.Errorf("%d processes said they drained, want 3:\n%s", n, c.stderr.String())
	}
}

// TestUpgradeEdgeWithHandoverKeepsPersistentClients: the split shape, `slipstream edge` in
// front of `slipstream pool` over the QUIC tunnel, with persistent pgbench clients and a pgx
// session holding a setting and a prepared statement through the edge, while the edge is
// upgraded with SIGUSR2. Each idle session moves to the new edge process, which opens it
// anew over its own tunnel to the same pool: no transaction fails, no client is dropped, and
// the pgx session's state is there after. The pool is not restarted: it reloads (SIGHUP,
// TestSIGHUPReloadsThePool) and is upgraded with SO_REUSEPORT next to its edges (see
// docs/deploy.md).
func TestUpgradeEdgeWithHandoverKeepsPersistentClients(t *testing.T) {
	t.Parallel()
	clients, seconds := upgradeLoad("10")
	ctx := testContext(t, 180*time.Second)
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", directURL())
	edge := startChild(t, pgtest.AppDB, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	table := "edge_handover_" + suffix()
	script := lifecycleScript(t, ctx, table)
	plain := withQuery(edge.PGURL, "sslmode", "disable")
	persistent := startPgbench(t, ctx, plain, script, "-c", clients, "-j", "4", "-T", seconds)

	held := holdSession(t, ctx, plain)
	waitForLoad(t, ctx, table, 20)
	edge.handOver(t, ctx)
	checkHeld(t, ctx, held, "after the edge's handover")
	t.Logf("%s", persistent.wait(t, "pgbench -c "+clients+" -T "+seconds+" (persistent) through a handover of the edge", true))
	if out := string(persistent.out); strings.Contains(out, "aborted") {
		t.Errorf("persistent clients were dropped:\n%s", out)
	}
	if m := handedOver.FindString(edge.stderr.String()); m == "" || m == "sessions_handed_over=0" {
		t.Errorf("the edge handed over no session (%q):\n%s", m, edge.stderr.String())
	} else {
		t.Logf("the old edge: %s", m)
	}
	edge.stopLast(t, ctx)
}

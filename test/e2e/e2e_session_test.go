package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// churn keeps n other clients running short transactions through inst until the returned stop
// function is called, so that a test client's consecutive transactions land on whichever
// origin connection is free. stop reports the churners' errors.
func churn(t *testing.T, ctx context.Context, inst *instance, n int) (stop func()) {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		conn := connect(t, ctx, inst.plainURL())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				err := pgx.BeginFunc(cctx, conn, func(tx pgx.Tx) error {
					var x int
					if err := tx.QueryRow(cctx, "select $1::int from pg_sleep(0.001)", i).Scan(&x); err != nil {
						return err
					}
					if x != i {
						return fmt.Errorf("churner %d got %d", i, x)
					}
					return nil
				})
				if err != nil && cctx.Err() == nil {
					errs <- fmt.Errorf("churner %d: %w", i, err)
					return
				}
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// pidsSeen collects origin backend pids, to show that a client moved between connections.
type pidsSeen map[uint32]bool

func (p pidsSeen) requireSeveral(t *testing.T) {
	t.Helper()
	if len(p) < 2 {
		t.Errorf("all transactions ran on origin backend %v: the test did not make the client change connections", p)
	}
}

// TestListenNotifyReachesTheListener: LISTEN pins the session to its origin connection, a
// notification sent by another client arrives, and the pinned connection is not handed to
// anyone else once the listener leaves.
func TestListenNotifyReachesTheListener(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 3", `queue_timeout = "10s"`)
	ch := "ch_" + suffix()
	a := connect(t, ctx, inst.plainURL())
	b := connect(t, ctx, inst.plainURL())
	if _, err := a.Exec(ctx, "listen "+ch); err != nil {
		t.Fatal(err)
	}
	if v, _ := metricValue(inst.metrics(t), "slipstream_pinned_sessions", `db="app"`); v < 1 {
		t.Errorf("slipstream_pinned_sessions is %v while a client listens, want > 0", v)
	}
	stop := churn(t, ctx, inst, 2)
	// The listener keeps querying between notifications.
	for i := range 5 {
		var n int
		if err := a.QueryRow(ctx, "select $1::int", i).Scan(&n); err != nil || n != i {
			t.Fatalf("listener query: %d, %v", n, err)
		}
	}
	if _, err := b.Exec(ctx, "select pg_notify($1, 'hi')", ch); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "notify "+ch+", 'there'"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hi", "there"} {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := a.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for notification %q: %v", want, err)
		}
		if n.Channel != ch || n.Payload != want {
			t.Errorf("notification %s %q, want %s %q", n.Channel, n.Payload, ch, want)
		}
	}
	// A notification sent while the listener is idle, not in a query, arrives too.
	if _, err := b.Exec(ctx, "select pg_notify($1, 'idle')", ch); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	n, err := a.WaitForNotification(wctx)
	cancel()
	if err != nil || n.Payload != "idle" {
		t.Fatalf("notification sent while idle: %v, %v", n, err)
	}
	stop()

	a.Close(ctx)
	if err := eventually(ctx, func() error {
		if v, _ := metricValue(inst.metrics(t), "slipstream_pinned_sessions", `db="app"`); v != 0 {
			return fmt.Errorf("slipstream_pinned_sessions is %v after the listener left", v)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	// No connection anyone gets now still listens on the channel.
	for i := range 10 {
		c := connect(t, ctx, inst.plainURL())
		var listening int
		if err := c.QueryRow(ctx, "select count(*) from pg_listening_channels() c where c = $1", ch).Scan(&listening); err != nil {
			t.Fatal(err)
		}
		if listening != 0 {
			t.Fatalf("client %d got an origin connection still listening on %s", i, ch)
		}
	}
}

// TestSessionAdvisoryLockStaysWithItsClient: a session-level advisory lock pins the session,
// so it is held across transactions, blocks other clients, and goes when the client leaves.
func TestSessionAdvisoryLockStaysWithItsClient(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 3", `queue_timeout = "10s"`)
	key := time.Now().UnixNano() & 0x7fffffff
	a := connect(t, ctx, inst.plainURL())
	b := connect(t, ctx, inst.plainURL())
	if _, err := a.Exec(ctx, "select pg_advisory_lock($1)", key); err != nil {
		t.Fatal(err)
	}
	stop := churn(t, ctx, inst, 2)
	for i := range 10 {
		var held int
		err := pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and objid = $1", key).Scan(&held)
		})
		if err != nil || held != 1 {
			t.Fatalf("transaction %d of the lock holder: holds %d advisory locks, %v", i, held, err)
		}
		var got bool
		if err := b.QueryRow(ctx, "select pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got {
			t.Fatalf("iteration %d: another client took the advisory lock the first one holds", i)
		}
	}
	stop()
	if v, _ := metricValue(inst.metrics(t), "slipstream_pinned_sessions", `db="app"`); v < 1 {
		t.Errorf("slipstream_pinned_sessions is %v while a client holds an advisory lock", v)
	}
	a.Close(ctx)
	if err := eventually(ctx, func() error {
		var got bool
		if err := b.QueryRow(ctx, "select pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
			return err
		}
		if !got {
			return errors.New("the advisory lock is still held after its holder left")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var released bool
	if err := b.QueryRow(ctx, "select pg_advisory_unlock($1)", key).Scan(&released); err != nil || !released {
		t.Errorf("unlock by the new holder: %v, %v", released, err)
	}
}

// TestSessionStateFollowsItsClientOnly checks invariant 3 with real drivers: settings, temp
// tables, SQL-level prepared statements and holdable cursors follow their client across origin
// connections, and no other client ever sees them.
func TestSessionStateFollowsItsClientOnly(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 2", `queue_timeout = "10s"`)
	sfx := suffix()
	schema := "s_" + sfx
	direct := connect(t, ctx, directURL())
	for _, stmt := range []string{
		"create schema " + schema,
		"create table " + schema + ".marker (v text)",
		"insert into " + schema + ".marker values ('in " + schema + "')",
	} {
		if _, err := direct.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop schema "+schema+" cascade") })

	// What a fresh client sees, directly: the defaults to compare with.
	var defaultPath string
	if err := direct.QueryRow(ctx, "show search_path").Scan(&defaultPath); err != nil {
		t.Fatal(err)
	}

	t.Run("SET search_path is kept across 20 transactions", func(t *testing.T) {
		a := connect(t, ctx, inst.plainURL())
		if _, err := a.Exec(ctx, "set search_path to "+schema); err != nil {
			t.Fatal(err)
		}
		holder := connect(t, ctx, inst.plainURL())
		stop := churn(t, ctx, inst, 2)
		defer stop()
		pids := pidsSeen{}
		for i := range 20 {
			// Every other time, another client holds a connection in a transaction meanwhile,
			// likely the one this client just used (the pool hands out the most recent).
			var held pgx.Tx
			if i%2 == 0 {
				var err error
				if held, err = holder.Begin(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := held.Exec(ctx, "select 1"); err != nil {
					t.Fatal(err)
				}
			}
			var cur, marker string
			var pid uint32
			err := pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, "select current_schema(), (select v from marker limit $1), pg_backend_pid()", 1).Scan(&cur, &marker, &pid)
			})
			if err != nil || cur != schema || marker != "in "+schema {
				t.Fatalf("transaction %d: current_schema %q, marker %q, %v", i, cur, marker, err)
			}
			pids[pid] = true
			if held != nil {
				if err := held.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// The simple protocol too.
			var path string
			if err := a.QueryRow(ctx, "show search_path", pgx.QueryExecModeSimpleProtocol).Scan(&path); err != nil || path != schema {
				t.Fatalf("after transaction %d: search_path %q, %v", i, path, err)
			}
		}
		pids.requireSeveral(t)
	})

	t.Run("settings of one client are never seen by others", func(t *testing.T) {
		const q = "select current_setting('statement_timeout'), current_setting('application_name'), current_setting('TimeZone'), current_setting('search_path'), current_setting('work_mem'), pg_backend_pid()"
		type vals [5]string
		var mu sync.Mutex
		pidsOf := map[*pgx.Conn]pidsSeen{}
		read := func(conn *pgx.Conn, mode pgx.QueryExecMode) (v vals, err error) {
			var pid uint32
			err = conn.QueryRow(ctx, q, mode).Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &pid)
			mu.Lock()
			if pidsOf[conn] == nil {
				pidsOf[conn] = pidsSeen{}
			}
			pidsOf[conn][pid] = true
			mu.Unlock()
			return v, err
		}
		bs := []*pgx.Conn{connect(t, ctx, inst.plainURL()), connect(t, ctx, inst.plainURL())}
		baseline, err := read(bs[0], pgx.QueryExecModeCacheStatement)
		if err != nil {
			t.Fatal(err)
		}
		a := connect(t, ctx, inst.plainURL())
		appName := "leaky_" + sfx
		for _, stmt := range []string{
			"set statement_timeout = '1234ms'",
			"set application_name = '" + appName + "'",
			"set time zone 'Asia/Tokyo'",
			"set search_path to " + schema,
			"set work_mem = '7MB'",
		} {
			if _, err := a.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		want := vals{"1234ms", appName, "Asia/Tokyo", schema, "7MB"}

		var wg sync.WaitGroup
		errs := make(chan error, 3)
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := range 40 {
				mode := pgx.QueryExecModeCacheStatement
				if i%2 == 1 {
					mode = pgx.QueryExecModeSimpleProtocol
				}
				v, err := read(a, mode)
				if err != nil || v != want {
					errs <- fmt.Errorf("the client that set them, iteration %d: %q, %v; want %q", i, v, err, want)
					return
				}
			}
		}()
		for bi, b := range bs {
			go func() {
				defer wg.Done()
				for i := range 60 {
					mode := pgx.QueryExecModeCacheStatement
					if i%2 == 1 {
						mode = pgx.QueryExecModeSimpleProtocol
					}
					v, err := read(b, mode)
					if err != nil || v != baseline {
						errs <- fmt.Errorf("other client %d, iteration %d: %q, %v; want %q", bi, i, v, err, baseline)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		shared := func() (n int) {
			for pid := range pidsOf[a] {
				if pidsOf[bs[0]][pid] || pidsOf[bs[1]][pid] {
					n++
				}
			}
			return n
		}
		if shared() == 0 {
			// The pool prefers a connection whose settings match, so on a quiet machine the
			// others may never have met a's. With both origin connections (max_connections = 2)
			// in use, one held by the first other client's transaction, the second must run on
			// the other, which a has used.
			tx, err := bs[0].Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := read(bs[0], pgx.QueryExecModeSimpleProtocol); err != nil || v != baseline {
				t.Errorf("other client 0 in a transaction: %q, %v; want %q", v, err, baseline)
			}
			if v, err := read(bs[1], pgx.QueryExecModeCacheStatement); err != nil || v != baseline {
				t.Errorf("other client 1 beside it: %q, %v; want %q", v, err, baseline)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if shared() == 0 {
			t.Errorf("the other clients never ran on an origin connection the first one used (%v, %v, %v): the test proved nothing",
				pidsOf[a], pidsOf[bs[0]], pidsOf[bs[1]])
		}

		// RESET ALL takes the client back to the defaults, on every connection it lands on.
		if _, err := a.Exec(ctx, "reset all"); err != nil {
			t.Fatal(err)
		}
		stop := churn(t, ctx, inst, 2)
		defer stop()
		for i := range 10 {
			v, err := read(a, pgx.QueryExecModeCacheStatement)
			if err != nil || v != baseline {
				t.Fatalf("after RESET ALL, query %d: %q, %v; want %q", i, v, err, baseline)
			}
		}
	})

	t.Run("SHOW application_name agrees with the ParameterStatus the client got", func(t *testing.T) {
		for _, target := range []struct{ name, url string }{{"directly", directURL()}, {"through slipstream", inst.plainURL()}} {
			c := connect(t, ctx, target.url)
			var shown string
			if err := c.QueryRow(ctx, "show application_name").Scan(&shown); err != nil {
				t.Fatal(err)
			}
			if reported := c.PgConn().ParameterStatus("application_name"); shown != reported {
				t.Errorf("%s: SHOW application_name is %q but the startup ParameterStatus said %q", target.name, shown, reported)
			}
		}
	})

	t.Run("SET in a rolled-back transaction is not kept and in a committed one is", func(t *testing.T) {
		a := connect(t, ctx, inst.plainURL())
		stop := churn(t, ctx, inst, 2)
		defer stop()
		path := func() string {
			var p string
			if err := a.QueryRow(ctx, "select current_setting('search_path')").Scan(&p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		tx, err := a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "set search_path to "+schema); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if p := path(); p != defaultPath {
				t.Fatalf("after a rolled-back SET, query %d: search_path %q, want %q", i, p, defaultPath)
			}
		}
		// A SET followed by an error, then ROLLBACK, is not kept either.
		tx, err = a.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.Exec(ctx, "set search_path to "+schema)
		tx.Exec(ctx, "select 1/0")
		tx.Rollback(ctx)
		if p := path(); p != defaultPath {
			t.Fatalf("after a failed transaction's SET: search_path %q, want %q", p, defaultPath)
		}
		// SET LOCAL ends with its transaction.
		err = pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "set local search_path to "+schema)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := path(); p != defaultPath {
			t.Fatalf("after SET LOCAL: search_path %q, want %q", p, defaultPath)
		}
		err = pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "set search_path to "+schema)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if p := path(); p != schema {
				t.Fatalf("after a committed SET, query %d: search_path %q, want %q", i, p, schema)
			}
		}
	})

	t.Run("a temp table stays with its client and leaves with it", func(t *testing.T) {
		a := connect(t, ctx, inst.plainURL())
		b := connect(t, ctx, inst.plainURL())
		table := "tt_" + sfx
		if _, err := a.Exec(ctx, "create temp table "+table+" (i int)"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Exec(ctx, "insert into "+table+" select generate_series(1, 3)"); err != nil {
			t.Fatal(err)
		}
		stop := churn(t, ctx, inst, 1)
		for i := range 10 {
			var n int
			err := pgx.BeginFunc(ctx, a, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, "select count(*) from "+table).Scan(&n)
			})
			if err != nil || n != 3 {
				t.Fatalf("transaction %d: %d rows in the temp table, %v", i, n, err)
			}
			var other *string
			if err := b.QueryRow(ctx, "select to_regclass($1)::text", table).Scan(&other); err != nil || other != nil {
				t.Fatalf("another client resolves the temp table name: %v, %v", other, err)
			}
		}
		stop()
		a.Close(ctx)
		if err := eventually(ctx, func() error {
			var n int
			if err := direct.QueryRow(ctx, "select count(*) from pg_class where relname = $1", table).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return errors.New("the temp table outlived its client's session: its origin connection was kept")
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	})

	t.Run("PREPARE and a WITH HOLD cursor stay with their client", func(t *testing.T) {
		a := connect(t, ctx, inst.plainURL())
		if _, err := a.Exec(ctx, "prepare twice(int) as select $1 * 2"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Exec(ctx, "declare held cursor with hold for select g from generate_series(1, 10) g"); err != nil {
			t.Fatal(err)
		}
		stop := churn(t, ctx, inst, 1)
		defer stop()
		for i := range 5 {
			var n int
			if err := a.QueryRow(ctx, fmt.Sprintf("execute twice(%d)", i)).Scan(&n); err != nil || n != 2*i {
				t.Fatalf("EXECUTE %d: %d, %v", i, n, err)
			}
			rows, _ := a.Query(ctx, "fetch 2 from held")
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil || len(got) != 2 || got[0] != 2*i+1 {
				t.Fatalf("FETCH %d: %v, %v", i, got, err)
			}
		}
	})
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// TestFiveHundredClientsShareTenOriginConnections connects 500 pgx clients at once to a
// database with max_connections = 10. Every client's queries and transaction succeed, and
// PostgreSQL never sees more than 10 connections from this serve instance (counted on a direct
// connection, by the application_name the instance's origin URL sets).
//
// It does not run in parallel with the other tests: 500 SCRAM logins at once are a burst of
// CPU (4096 HMAC rounds each, client side, nine times slower under -race), and the other tests'
// timings would suffer from it, or it from them.
func TestFiveHundredClientsShareTenOriginConnections(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	sfx := suffix()
	appName := "e2e_load_" + sfx
	// md5, not SCRAM: 500 clients' PBKDF2 at once (4,096 rounds each, slowed by -race on a
	// busy machine) could outlast the 15 s handshake timeout; the logins are not what this
	// test is about.
	inst := startServeTOML(t, "application_name="+appName, "max_connections = 10", `auth_method = "md5"`)
	table := "load_" + sfx
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, "create table "+table+" (client int primary key, n int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })

	// One client first, as an application's first connection: the edge then knows the SCRAM
	// keys of the password and derives them once, not once per client of the burst.
	if err := oneLoadClient(ctx, inst.plainURL(), table, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Exec(ctx, "delete from "+table); err != nil {
		t.Fatal(err)
	}

	// Watch the origin from the side for the whole run.
	admin := connect(t, ctx, srv.AdminURL())
	var peak atomic.Int64
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var n int64
			err := admin.QueryRow(watchCtx, "select count(*) from pg_stat_activity where application_name = $1", appName).Scan(&n)
			if err != nil {
				if watchCtx.Err() != nil {
					err = nil
				}
				watchErr <- err
				return
			}
			if n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-watchCtx.Done():
				watchErr <- nil
				return
			case <-tick.C:
			}
		}
	}()

	const clients = 500
	start := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Each client gets well less than the test, so a stuck one is reported as such.
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			errs <- oneLoadClient(cctx, inst.plainURL(), table, i)
		}()
	}
	// Should a client get stuck, keep what slipstream was doing while it was, for the report.
	var stuckMu sync.Mutex
	var stuck string
	watchdog := time.AfterFunc(20*time.Second, func() {
		stacks := productStacks()
		stuckMu.Lock()
		stuck = stacks
		stuckMu.Unlock()
	})
	began := time.Now()
	close(start)
	wg.Wait()
	watchdog.Stop()
	took := time.Since(began)
	stopWatch()
	if err := <-watchErr; err != nil {
		t.Errorf("watching pg_stat_activity: %v", err)
	}
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed < 10 {
				t.Error(err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d clients failed", failed, clients)
		// What the origin connections were doing, for the diagnosis.
		rows, _ := admin.Query(context.WithoutCancel(ctx), "select pid, state, wait_event, query from pg_stat_activity where application_name = $1", appName)
		for rows.Next() {
			v, _ := rows.Values()
			t.Logf("origin connection: %v", v)
		}
		rows.Close()
		stuckMu.Lock()
		t.Logf("slipstream's goroutines 20s after the start:\n%s", stuck)
		stuckMu.Unlock()
	}
	t.Logf("%d clients in %v; at most %d origin connections", clients, took.Round(time.Millisecond), peak.Load())
	if p := peak.Load(); p > 10 || p == 0 {
		t.Errorf("PostgreSQL saw at most %d connections from slipstream, want 1 to 10", p)
	}
	var rows, sum int
	if err := direct.QueryRow(ctx, "select count(*), coalesce(sum(n), 0) from "+table).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != clients || sum != 2*clients {
		t.Errorf("table has %d rows summing to %d, want %d rows summing to %d", rows, sum, clients, 2*clients)
	}
	m := inst.metrics(t)
	if v, _ := metricValue(m, "slipstream_origin_connections", `db="app"`, `state="in_use"`); v > 10 {
		t.Errorf("slipstream_origin_connections in_use %v", v)
	}
	if v, _ := metricValue(m, "slipstream_pool_wait_seconds_count", `db="app"`); v == 0 {
		t.Errorf("slipstream_pool_wait_seconds_count is 0 after 500 clients queued for 10 connections")
	}
}

// oneLoadClient is one of the 500: connect, a few queries, a small transaction.
func oneLoadClient(ctx context.Context, url, table string, i int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("client %d: connect: %w", i, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, "select $1::int + 1", i).Scan(&n); err != nil || n != i+1 {
		return fmt.Errorf("client %d: query: %d, %w", i, n, err)
	}
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		return fmt.Errorf("client %d: simple query: %w", i, err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "insert into "+table+" values ($1, 1)", i); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "update "+table+" set n = n + 1 where client = $1", i); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "select n from "+table+" where client = $1", i).Scan(&n)
	})
	if err != nil || n != 2 {
		return fmt.Errorf("client %d: transaction: %d, %w", i, n, err)
	}
	return nil
}

// TestErrorsReachTheClientWithTheirSQLSTATE: refusals and protocol errors are PostgreSQL
// errors with the codes PostgreSQL uses, and none of them disturbs other clients.
func TestErrorsReachTheClientWithTheirSQLSTATE(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)

	for _, tc := range []struct {
		name, user, password, db, want string
	}{
		{"a wrong password is 28P01", pgtest.AppUser, "wrong-secret", pgtest.AppDB, "28P01"},
		{"an unknown user is 28P01", "nobody", pgtest.AppPassword, pgtest.AppDB, "28P01"},
		{"an unknown database is 3D000", pgtest.AppUser, pgtest.AppPassword, "nosuchdb", "3D000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxied := strings.Replace(srv.URL(tc.user, tc.password, tc.db), fmt.Sprintf("%s:%d", srv.Host, srv.Port), pgAddr(t, inst), 1)
			for _, target := range []struct{ name, url string }{{"directly", srv.URL(tc.user, tc.password, tc.db)}, {"through slipstream", proxied}} {
				pc, err := pgconn.Connect(ctx, target.url)
				if err == nil {
					pc.Close(ctx)
				}
				if got := sqlstate(err); got != tc.want {
					t.Errorf("%s: %v (SQLSTATE %q), want %s", target.name, err, got, tc.want)
				}
			}
		})
	}

	t.Run("a full pool is 53300 after the queue timeout", func(t *testing.T) {
		t.Parallel()
		small := startServeTOML(t, "", "max_connections = 1", `queue_timeout = "300ms"`)
		holder := connect(t, ctx, small.plainURL())
		waiter := connect(t, ctx, small.plainURL())
		tx, err := holder.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "select $1::int", 1); err != nil {
			t.Fatal(err)
		}
		for _, q := range []struct {
			name string
			run  func() error
		}{
			{"simple query", func() error { _, err := waiter.Exec(ctx, "select 1"); return err }},
			{"extended query", func() error { var n int; return waiter.QueryRow(ctx, "select $1::int", 2).Scan(&n) }},
		} {
			began := time.Now()
			err := q.run()
			took := time.Since(began)
			if sqlstate(err) != "53300" {
				t.Errorf("%s while the only connection is in a transaction: %v, want 53300", q.name, err)
			}
			if took < 250*time.Millisecond || took > 5*time.Second {
				t.Errorf("%s: refused after %v, want about the 300ms queue timeout", q.name, took)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("the holder's commit: %v", err)
		}
		var n int
		if err := waiter.QueryRow(ctx, "select $1::int", 3).Scan(&n); err != nil || n != 3 {
			t.Errorf("the refused client once the connection is free: %d, %v", n, err)
		}
		if v, _ := metricValue(small.metrics(t), "slipstream_pool_queue_timeouts_total", `db="app"`); v < 2 {
			t.Errorf("slipstream_pool_queue_timeouts_total is %v, want 2", v)
		}
	})

	t.Run("a bad message length ends only that session with 08P01", func(t *testing.T) {
		t.Parallel()
		bystander := connect(t, ctx, inst.plainURL())
		stopBystander := make(chan struct{})
		bystanderErr := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stopBystander:
					bystanderErr <- nil
					return
				default:
				}
				var n int
				if err := bystander.QueryRow(ctx, "select $1::int", i).Scan(&n); err != nil || n != i {
					bystanderErr <- fmt.Errorf("bystander query %d: %d, %w", i, n, err)
					return
				}
			}
		}()
		for _, bad := range []struct {
			name string
			msg  []byte
		}{
			{"Q with length 2", []byte{'Q', 0, 0, 0, 2}},
			{"Q with length 0", []byte{'Q', 0, 0, 0, 0}},
			{"a 2 GiB message", []byte{'Q', 0x7f, 0xff, 0xff, 0xf0, 's', 'e', 'l'}},
		} {
			code, err := sendAfterStartup(t, ctx, inst.plainURL(), bad.msg)
			if err != nil {
				t.Errorf("%s: %v", bad.name, err)
			} else if code != "08P01" {
				t.Errorf("%s: ErrorResponse %q, want 08P01", bad.name, code)
			}
		}
		close(stopBystander)
		if err := <-bystanderErr; err != nil {
			t.Error(err)
		}
		if v, _ := metricValue(inst.metrics(t), "slipstream_client_errors_total", `condition="protocol_violation"`); v < 3 {
			t.Errorf("slipstream_client_errors_total{condition=\"protocol_violation\"} is %v, want 3", v)
		}
	})

	t.Run("a bad startup packet is refused", func(t *testing.T) {
		t.Parallel()
		for _, pkt := range [][]byte{
			{0, 0, 0, 3},                // shorter than its own length word
			{0x7f, 0, 0, 0, 0, 3, 0, 0}, // 2 GiB
			{0, 0, 0, 8, 0, 9, 0, 0},    // protocol 9.0
		} {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", pgAddr(t, inst))
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			nc.Write(pkt)
			b, err := io.ReadAll(nc)
			nc.Close()
			if err != nil {
				t.Errorf("startup packet %x: the connection was not closed: %v", pkt, err)
				continue
			}
			// PostgreSQL itself may close without a word; if anything is said, it is an error.
			if len(b) > 0 && b[0] != 'E' {
				t.Errorf("startup packet %x: answered %q, want an ErrorResponse or nothing", pkt, b)
			}
		}
		conn := connect(t, ctx, inst.plainURL())
		if _, err := conn.Exec(ctx, "select 1"); err != nil {
			t.Errorf("a new client after the bad ones: %v", err)
		}
	})
}

// sendAfterStartup logs in to url, sends raw bytes and returns the SQLSTATE of the
// ErrorResponse that must follow, after which the server must close the connection.
func sendAfterStartup(t *testing.T, ctx context.Context, url string, raw []byte) (string, error) {
	pc, err := pgconn.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	// pgconn may have a background read in flight; it must end before the socket is ours.
	if err := pc.SyncConn(ctx); err != nil {
		return "", err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return "", err
	}
	defer hc.Conn.Close()
	hc.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := hc.Conn.Write(raw); err != nil {
		return "", err
	}
	code := ""
	for {
		msg, err := hc.Frontend.Receive()
		if err != nil {
			if code == "" {
				return "", fmt.Errorf("disconnected without an ErrorResponse: %w", err)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return code, nil
			}
			return code, fmt.Errorf("after the ErrorResponse: %w, want the connection closed", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			if code != "" {
				return code, fmt.Errorf("a second ErrorResponse: %s %s", m.Code, m.Message)
			}
			code = m.Code
		default:
			return code, fmt.Errorf("unexpected %T", msg)
		}
	}
}

// TestMetricsAndHealthzAreServed checks /metrics names and /healthz while a client is
// connected.
func TestMetricsAndHealthzAreServed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	conn := connect(t, ctx, inst.plainURL())
	for i := range 5 {
		if _, err := conn.Exec(ctx, "select $1::int", i); err != nil {
			t.Fatal(err)
		}
	}
	m := inst.metrics(t)
	for _, name := range []string{
		"slipstream_client_connections",
		"slipstream_origin_connections",
		"slipstream_queries_total",
		"slipstream_pool_wait_seconds",
		"slipstream_pinned_sessions",
	} {
		if !strings.Contains(m, "# TYPE "+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if v, ok := metricValue(m, "slipstream_client_connections", `db="app"`); !ok || v != 1 {
		t.Errorf("slipstream_client_connections{db=\"app\"} = %v (present %v) with one client connected", v, ok)
	}
	if v, _ := metricValue(m, "slipstream_queries_total", `db="app"`); v < 5 {
		t.Errorf("slipstream_queries_total{db=\"app\"} = %v after 5 queries", v)
	}
	if v, ok := metricValue(m, "slipstream_origin_connections", `db="app"`); !ok || v < 1 {
		t.Errorf("slipstream_origin_connections{db=\"app\"} = %v (present %v)", v, ok)
	}
	body, code := httpGet(t, "http://"+inst.HTTP+"/healthz")
	if code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q, want 200 ok", code, body)
	}
}

// TestServeStopsAndTellsConnectedClients: ending serve's context (SIGTERM) ends every session
// with 57P01, as PostgreSQL's smart shutdown does, and run returns 0.
func TestServeStopsAndTellsConnectedClients(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	conn := connect(t, ctx, inst.plainURL())
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if code := inst.Stop(); code != 0 {
		t.Errorf("run returned %d, want 0; stderr:\n%s", code, inst.stderr.String())
	}
	_, err := conn.Exec(ctx, "select 1")
	if err == nil {
		t.Fatal("a query after serve stopped succeeded")
	}
	// pgx sees the FATAL either as the answer or, if it was read before, the closed connection.
	if c := sqlstate(err); c != "" && c != "57P01" {
		t.Errorf("after serve stopped: %v, want 57P01 or a closed connection", err)
	}
}

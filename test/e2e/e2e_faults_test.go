package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// Origin faults: every origin connection of the database is killed (pg_terminate_backend, as
// an operator or a cloud provider's idle reaper does) while 16 pgbench clients run through
// slipstream, and the origin is restarted. These tests run a PostgreSQL of their own: the
// package's is shared with tests running meanwhile.

// startOwnPG starts a PostgreSQL for one test, stopped when it ends.
func startOwnPG(t *testing.T, ctx context.Context) *pgtest.Server {
	t.Helper()
	own, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Stop() })
	return own
}

// killAll terminates every backend of database db but admin's own, and returns how many.
func killAll(ctx context.Context, admin *pgx.Conn, db string) (int, error) {
	var n int
	err := admin.QueryRow(ctx, "select count(pg_terminate_backend(pid)) from pg_stat_activity "+
		"where datname = $1 and pid <> pg_backend_pid()", db).Scan(&n)
	return n, err
}

// pgbenchAutocommit is a pgbench script of single statements outside any transaction block,
// after a think time: each client is idle, as far as the database knows, between statements.
const pgbenchAutocommit = `\sleep 5 ms
\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
`

func TestKillingEveryOriginConnectionUnderPgbenchCostsIdleClientsNothing(t *testing.T) {
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench: %v (./scripts/test.sh installs postgresql-15)", err)
	}
	ctx := testContext(t, 180*time.Second)
	own := startOwnPG(t, ctx)
	inst := runServe(t, []string{"--origin", own.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)})
	env := []string{"PGPASSWORD=" + pgtest.AppPassword, "PGSSLMODE=disable"}
	direct, _ := url.Parse(own.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB))
	if out, err := runTool(ctx, t, env, t.TempDir(), pgbench, "-i", "-s", "1", "-q", "-h", direct.Hostname(),
		"-p", direct.Port(), "-U", pgtest.AppUser, pgtest.AppDB); err != nil {
		t.Fatalf("pgbench -i directly: %v\n%s", err, out)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "autocommit.sql")
	if err := os.WriteFile(script, []byte(pgbenchAutocommit), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, ctx, own.AdminURL())
	proxied, _ := url.Parse(inst.PGURL)
	for _, mode := range []string{"prepared", "simple"} {
		t.Run("-M "+mode, func(t *testing.T) {
			done := make(chan string, 1)
			go func() {
				out, err := runTool(ctx, t, env, dir, pgbench, "-n", "-M", mode, "-f", script, "-c", "16", "-j", "4",
					"-T", "5", "-h", proxied.Hostname(), "-p", proxied.Port(), "-U", pgtest.AppUser, pgtest.AppDB)
				if err != nil {
					out = fmt.Sprintf("%v\n%s", err, out)
				}
				done <- out
			}()
			killed := killEverySecond(t, ctx, admin, done)
			out := <-done
			t.Logf("origin backends killed under pgbench -M %s: %v\n%s", mode, killed, out)
			if bad := notTheDatabasesOwn(out); bad != "" || !strings.Contains(out, "number of failed transactions: 0") {
				t.Errorf("pgbench -M %s saw an error the database would not have given (%s):\n%s", mode, bad, out)
			}
		})
	}
}

// notTheDatabasesOwn returns the first error line of pgbench's output that is not PostgreSQL's
// own FATAL for a statement whose backend was killed while it ran (what the client would get
// direct), or "". A client between statements, idle, must get none at all: every kill finds
// most clients idle (the script's think time), and an error that is not the database's own
// would show an idle client hit.
func notTheDatabasesOwn(out string) string {
	for _, l := range strings.Split(out, "\n") {
		switch {
		case !strings.Contains(l, "error"), strings.Contains(l, "Run was aborted"),
			strings.Contains(l, "aborted in command") && strings.HasSuffix(l, "FATAL:  terminating connection due to administrator command"):
		default:
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// killEverySecond kills every origin connection of database app each second until done has
// something, which it puts back, and returns how many it killed each time.
func killEverySecond(t *testing.T, ctx context.Context, admin *pgx.Conn, done chan string) []int {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var killed []int
	for {
		select {
		case out := <-done:
			done <- out
			return killed
		case <-tick.C:
			n, err := killAll(ctx, admin, pgtest.AppDB)
			if err != nil {
				t.Fatal(err)
			}
			killed = append(killed, n)
		}
	}
}

func TestAClientWhoseSessionCannotSurviveGetsPostgresqlsFatalAndItsConnectionEnds(t *testing.T) {
	ctx := testContext(t, 120*time.Second)
	own := startOwnPG(t, ctx)
	inst := runServe(t, []string{"--origin", own.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)})
	admin := connect(t, ctx, own.AdminURL())

	inTx := connect(t, ctx, inst.plainURL())
	if _, err := inTx.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if _, err := inTx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	listener := connect(t, ctx, inst.plainURL())
	if _, err := listener.Exec(ctx, "listen faults"); err != nil {
		t.Fatal(err)
	}
	idle := connect(t, ctx, inst.plainURL())
	if _, err := idle.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if n, err := killAll(ctx, admin, pgtest.AppDB); err != nil || n < 2 {
		t.Fatalf("killed %d origin backends (%v), want at least the two held ones", n, err)
	}
	_, err := inTx.Exec(ctx, "select 2")
	wantFatal(t, "a client inside a transaction", err, inTx)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = listener.WaitForNotification(wctx)
	cancel()
	wantFatal(t, "a client pinned by LISTEN", err, listener)
	for i := range 1000 {
		if _, err := idle.Exec(ctx, "select $1::int", i); err != nil {
			t.Fatalf("query %d of 1000 after every origin connection was killed: %v", i+1, err)
		}
	}
	// Drivers reconnect, as pq's Listener and node-postgres' pool do: a new connection works.
	again := connect(t, ctx, inst.plainURL())
	if _, err := again.Exec(ctx, "listen faults"); err != nil {
		t.Errorf("LISTEN on a new connection: %v", err)
	}
}

// wantFatal checks that err is PostgreSQL's own FATAL 57P01 and that the connection ended.
func wantFatal(t *testing.T, who string, err error, conn *pgx.Conn) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P01" || pe.Severity != "FATAL" {
		t.Errorf("%s got %v, want PostgreSQL's FATAL 57P01 admin_shutdown", who, err)
	}
	if _, err := conn.Exec(context.Background(), "select 1"); err == nil {
		t.Errorf("%s: its connection still serves queries after the FATAL", who)
	}
}

func TestEveryClientIsServedWithinASecondOfTheOriginComingBack(t *testing.T) {
	ctx := testContext(t, 120*time.Second)
	own := startOwnPG(t, ctx)
	inst := runServe(t, []string{"--origin", own.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)})
	const clients = 16
	var back atomic.Int64 // unix nanoseconds at which the origin accepted connections again
	served := make([]time.Time, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			served[i] = serveUntilBack(ctx, inst.plainURL(), &back)
		}()
	}
	if err := own.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	back.Store(time.Now().UnixNano())
	wg.Wait()
	origin := time.Unix(0, back.Load())
	var worst time.Duration
	for i, at := range served {
		if at.IsZero() {
			t.Fatalf("client %d was never served after the origin came back", i)
		}
		worst = max(worst, at.Sub(origin))
	}
	t.Logf("%d clients, the last served %v after the origin accepted connections again", clients, worst)
	if worst > time.Second {
		t.Errorf("the last client was served %v after the origin came back, want within 1s", worst)
	}
}

// serveUntilBack runs queries as a client with a driver's reconnect logic does, through the
// restart, and returns when its first query that started after the origin was back
// (back != 0) succeeded.
func serveUntilBack(ctx context.Context, url string, back *atomic.Int64) time.Time {
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		after := back.Load() != 0
		if conn == nil || conn.IsClosed() {
			conn, _ = pgx.Connect(ctx, url)
		}
		if conn != nil {
			if _, err := conn.Exec(ctx, "select 1"); err == nil && after {
				return time.Now()
			}
		}
		select {
		case <-pace.C:
		case <-ctx.Done():
		}
	}
	return time.Time{}
}

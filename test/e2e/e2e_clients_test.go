package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// TestLibPQWorksThroughSlipstream uses database/sql with lib/pq: queries, a statement prepared
// once and used from several goroutines (so on several client connections, each over two
// origin connections), transactions, errors and COPY.
func TestLibPQWorksThroughSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "max_connections = 2", `queue_timeout = "10s"`)
	db, err := sql.Open("postgres", inst.plainURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(8)
	table := "pq_" + suffix()
	if _, err := db.ExecContext(ctx, "create table "+table+" (id int primary key, name text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("drop table " + table) })

	t.Run("queries", func(t *testing.T) {
		var (
			n    int
			s    string
			null sql.NullString
			b    []byte
			f    float64
		)
		err := db.QueryRowContext(ctx, "select $1::int + 1, $2::text, null::text, $3::bytea, $4::float8",
			41, "ünïcode", []byte{0, 1, 0xff}, 2.5).Scan(&n, &s, &null, &b, &f)
		if err != nil || n != 42 || s != "ünïcode" || null.Valid || !bytes.Equal(b, []byte{0, 1, 0xff}) || f != 2.5 {
			t.Fatalf("%d %q %v %x %v, %v", n, s, null, b, f, err)
		}
		rows, err := db.QueryContext(ctx, "select g from generate_series(1, 1000) g")
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for rows.Next() {
			var g int
			rows.Scan(&g)
			sum += g
		}
		if err := rows.Err(); err != nil || sum != 500500 {
			t.Fatalf("sum %d, %v", sum, err)
		}
		rows.Close()
		_, err = db.ExecContext(ctx, "select 1/0")
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || pqErr.Code != "22012" {
			t.Fatalf("division by zero: %v, want 22012", err)
		}
		if err := db.QueryRowContext(ctx, "select 1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("after the error: %d, %v", n, err)
		}
	})

	t.Run("a prepared statement used from 8 goroutines", func(t *testing.T) {
		stmt, err := db.PrepareContext(ctx, "select $1::int * $2::int, pg_backend_pid()")
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
		var wg sync.WaitGroup
		var mu sync.Mutex
		pids := pidsSeen{}
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					var n int
					var pid uint32
					if err := stmt.QueryRowContext(ctx, g, i).Scan(&n, &pid); err != nil || n != g*i {
						errs <- fmt.Errorf("goroutine %d, use %d: %d, %v", g, i, n, err)
						return
					}
					mu.Lock()
					pids[pid] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		pids.requireSeveral(t)
	})

	t.Run("transactions commit and roll back", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "insert into "+table+" values ($1, $2)", 1, "rolled back"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		tx, err = db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := tx.PrepareContext(ctx, "insert into "+table+" values ($1, $2)")
		if err != nil {
			t.Fatal(err)
		}
		for i := 2; i <= 4; i++ {
			if _, err := ins.ExecContext(ctx, i, "committed"); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var n int
		var names string
		if err := db.QueryRowContext(ctx, "select count(*), string_agg(distinct name, ',') from "+table).Scan(&n, &names); err != nil {
			t.Fatal(err)
		}
		if n != 3 || names != "committed" {
			t.Fatalf("after rollback and commit: %d rows named %q, want 3 named committed", n, names)
		}
	})

	t.Run("COPY FROM STDIN", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		stmt, err := tx.PrepareContext(ctx, pq.CopyIn(table, "id", "name"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 100; i < 1100; i++ {
			if _, err := stmt.ExecContext(ctx, i, fmt.Sprint("copied ", i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stmt.ExecContext(ctx); err != nil {
			t.Fatal(err)
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "select count(*) from "+table+" where id >= 100").Scan(&n); err != nil || n != 1000 {
			t.Fatalf("copied rows: %d, %v", n, err)
		}
	})
}

// runTool runs a command with a deadline and returns its combined output.
func runTool(ctx context.Context, t *testing.T, env []string, dir, name string, args ...string) (string, error) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PGSSLMODE=", "PGAPPNAME=")
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPsqlWorksThroughSlipstream runs the psql binary, with \copy in and out, with and without
// TLS.
func TestPsqlWorksThroughSlipstream(t *testing.T) {
	t.Parallel()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql: %v (./scripts/test.sh installs postgresql-client-15)", err)
	}
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	dir := t.TempDir()
	table := "psql_" + suffix()
	var in strings.Builder
	for i := range 500 {
		fmt.Fprintf(&in, "%d,\"name, %d\",%d.5\n", i, i, i)
	}
	inFile, outFile := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
	if err := os.WriteFile(inFile, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	psqlRun := func(t *testing.T, u string, cmds ...string) (string, error) {
		args := []string{u, "-X", "-q", "-v", "ON_ERROR_STOP=1"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		return runTool(ctx, t, nil, dir, psql, args...)
	}

	for _, mode := range []string{"disable", "require"} {
		t.Run("sslmode="+mode, func(t *testing.T) {
			u := inst.URL("sslmode", mode)
			out, err := psqlRun(t, u, `\conninfo`)
			if err != nil {
				t.Fatalf("psql: %v\n%s", err, out)
			}
			if tlsUsed := strings.Contains(out, "SSL connection"); tlsUsed != (mode == "require") {
				t.Errorf("sslmode=%s: \\conninfo says %q", mode, out)
			}
			out, err = psqlRun(t, u, "select 40 + 2 as answer", "select current_user")
			if err != nil || !strings.Contains(out, "42") || !strings.Contains(out, pgtest.AppUser) {
				t.Errorf("psql queries: %v\n%s", err, out)
			}
		})
	}

	t.Run(`\copy in and out`, func(t *testing.T) {
		out, err := psqlRun(t, inst.URL("sslmode", "require"),
			"create table "+table+" (id int primary key, name text, amount numeric)",
			`\copy `+table+` from 'in.csv' with (format csv)`,
			`\copy (select * from `+table+` order by id) to 'out.csv' with (format csv)`,
			"drop table "+table)
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		got, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != in.String() {
			t.Errorf("\\copy out gave %d bytes, \\copy in had %d, and they differ", len(got), in.Len())
		}
	})

	t.Run("an error stops the script as it does directly", func(t *testing.T) {
		code := func(err error) int {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			return 0
		}
		wantOut, wantErr := psqlRun(t, directURL(), "select 1/0", "select 'not reached'")
		out, err := psqlRun(t, inst.URL("sslmode", "disable"), "select 1/0", "select 'not reached'")
		if code(err) != code(wantErr) || out != wantOut || code(err) == 0 {
			t.Errorf("through slipstream: %v\n%s\ndirectly: %v\n%s", err, out, wantErr, wantOut)
		}
	})

	t.Run("verify-full with the generated certificate", func(t *testing.T) {
		u := inst.URL("sslmode", "verify-full", "sslrootcert", filepath.Join(inst.DataDir, "tls", "server.crt"))
		if out, err := psqlRun(t, u, "select 1"); err != nil {
			t.Errorf("psql: %v\n%s", err, out)
		}
	})
}

// TestNodePostgresWorksThroughSlipstream runs test/node/pg_smoke.js (node-postgres) directly and
// through slipstream. ./scripts/test.sh installs node and the package; elsewhere it is skipped.
func TestNodePostgresWorksThroughSlipstream(t *testing.T) {
	t.Parallel()
	node, dir := nodePackage(t, "pg")
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	runSmoke(ctx, t, node, dir, "pg_smoke.js", "node-pg ok", []smokeTarget{
		{"directly", directURL()},
		{"through slipstream", inst.plainURL()},
		{"through slipstream over TLS", inst.URL("sslmode", "no-verify")},
	})
}

// nodePackage returns the node binary and test/node's directory, and skips the test when node
// or the npm package pkg is not installed there.
func nodePackage(t *testing.T, pkg string) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (./scripts/test.sh installs it)")
	}
	dir, err = filepath.Abs(filepath.Join("..", "..", "test", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
		t.Skip("test/node/node_modules is missing (./scripts/test.sh runs npm ci)")
	}
	return node, dir
}

// smokeTarget is one database URL a node smoke script runs against.
type smokeTarget struct{ name, url string }

// runSmoke runs the node script in dir against each target in parallel subtests; a run passes
// when the script exits 0 and prints ok.
func runSmoke(ctx context.Context, t *testing.T, node, dir, script, ok string, targets []smokeTarget) {
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			out, err := runTool(ctx, t, nil, dir, node, script, target.url)
			if err != nil || !strings.Contains(out, ok) {
				t.Errorf("node %s: %v\n%s", script, err, out)
			}
		})
	}
}

// TestPgbenchRunsThroughSlipstream initializes pgbench's tables directly and runs its TPC-B
// workload through slipstream in each query mode, 4 clients over 2 origin connections, then
// for a few seconds with a log of each transaction: the clients take turns on the connections,
// none starves.
func TestPgbenchRunsThroughSlipstream(t *testing.T) {
	t.Parallel()
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench: %v (./scripts/test.sh installs postgresql-15)", err)
	}
	ctx := testContext(t, 120*time.Second)
	inst := startServeTOML(t, "", "max_connections = 2", `queue_timeout = "10s"`)
	env := []string{"PGPASSWORD=" + pgtest.AppPassword, "PGSSLMODE=disable"}
	hostPort := func(raw string) (string, string) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u.Hostname(), u.Port()
	}
	dh, dp := hostPort(directURL())
	out, err := runTool(ctx, t, env, t.TempDir(), pgbench, "-i", "-s", "1", "-q", "-h", dh, "-p", dp, "-U", pgtest.AppUser, pgtest.AppDB)
	if err != nil {
		t.Fatalf("pgbench -i directly: %v\n%s", err, out)
	}
	ph, pp := hostPort(inst.PGURL)
	// A thread per client: pgbench 15 prepares a client's statements with the blocking
	// PQprepare, so with two clients on a thread, one waiting for an origin connection held by
	// the other's open transaction stalls both (as through any pool smaller than the client
	// count) until the queue timeout. CI saw exactly that, twice.
	for _, mode := range []string{"prepared", "extended", "simple"} {
		t.Run("-M "+mode, func(t *testing.T) {
			out, err := runTool(ctx, t, env, t.TempDir(), pgbench, "-n", "-M", mode, "-c", "4", "-j", "4", "-t", "200",
				"-h", ph, "-p", pp, "-U", pgtest.AppUser, pgtest.AppDB)
			if err != nil || strings.Contains(strings.ToLower(out), "error") ||
				!strings.Contains(out, "number of transactions actually processed: 800/800") {
				t.Errorf("pgbench -M %s: %v\n%s", mode, err, out)
			}
		})
	}
	t.Run("turns", func(t *testing.T) {
		dir := t.TempDir()
		out, err := runTool(ctx, t, env, dir, pgbench, "-n", "-M", "prepared", "-c", "4", "-j", "4", "-T", "4", "-l",
			"-h", ph, "-p", pp, "-U", pgtest.AppUser, pgtest.AppDB)
		if err != nil {
			t.Fatalf("pgbench -T 4 -l: %v\n%s", err, out)
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "pgbench_log.*"))
		perClient := map[string]int{}
		for _, f := range logs {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if fs := strings.Fields(l); len(fs) > 0 {
					perClient[fs[0]]++
				}
			}
		}
		least, most := -1, 0
		for _, n := range perClient {
			most = max(most, n)
			if least < 0 || n < least {
				least = n
			}
		}
		t.Logf("transactions per client: %v", perClient)
		if len(perClient) != 4 || least < most/4 {
			t.Errorf("transactions per client %v: want all 4 clients served, none at under a quarter of the busiest", perClient)
		}
	})
}

package e2e

// The admin console, query insights and dashboard (issue 20) against real tools: psql-style
// SHOW commands compared column by column with Debian's PgBouncer in front of the same
// PostgreSQL, pgbouncer_exporter's collector queries, pgbench under PAUSE/RESUME, and the
// dashboard in headless Chromium.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/lib/pq"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/internal/sysuser"
)

const adminPassword = "console-s3cret"

// startAdminServe runs serve in front of the app database with an admin user (app's name, so
// PgBouncer's console can be reached with the same one) and a stats user.
func startAdminServe(t *testing.T, originQuery string, lines ...string) *instance {
	t.Helper()
	origin := srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)
	if originQuery != "" {
		origin += "&" + originQuery
	}
	var b strings.Builder
	fmt.Fprintf(&b, "admin_users = [%q]\nstats_users = [\"stats\"]\nadmin_password = %q\n", "ops", adminPassword)
	fmt.Fprintf(&b, "[[database]]\nname = %q\norigin = %q\n", pgtest.AppDB, origin)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return runServe(t, []string{"--config", writeTOML(t, b.String())})
}

// consoleURL is the URL of the console of inst as user.
func consoleURL(t testing.TB, inst *instance, user, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, adminPassword, pgAddr(t, inst), db)
}

// simpleConn connects with pgx speaking the simple protocol only, as a console needs.
func simpleConn(t testing.TB, ctx context.Context, raw string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return connectConfig(t, ctx, cfg)
}

// startPgBouncer runs Debian's PgBouncer in front of the app database, its console open to
// the app user (trust), and returns its address.
func startPgBouncer(t *testing.T, ctx context.Context) string {
	t.Helper()
	const bin = "/usr/sbin/pgbouncer"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("pgbouncer: %v (./scripts/test.sh installs it)", err)
	}
	cred, err := sysuser.Credential("postgres")
	if err != nil {
		t.Fatal(err)
	}
	// Not under t.TempDir(): PgBouncer runs as postgres, which may not enter root's 0700 parents.
	dir, err := os.MkdirTemp("", "slipstream-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	host, port, _ := net.SplitHostPort(addr)
	users := filepath.Join(dir, "userlist.txt")
	ini := filepath.Join(dir, "pgbouncer.ini")
	files := map[string]string{
		users: fmt.Sprintf("%q %q\n", pgtest.AppUser, pgtest.AppPassword),
		ini: fmt.Sprintf("[databases]\n%s = host=%s port=%d dbname=%s\n\n[pgbouncer]\nlisten_addr = %s\nlisten_port = %s\n"+
			"unix_socket_dir =\nauth_type = trust\nauth_file = %s\nadmin_users = %s\npool_mode = transaction\n",
			pgtest.AppDB, srv.Host, srv.Port, pgtest.AppDB, host, port, users, pgtest.AppUser),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{dir, users, ini} {
		if cred != nil {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(bin, ini)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	out := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	})
	raw := fmt.Sprintf("postgres://%s@%s/pgbouncer?sslmode=disable", pgtest.AppUser, addr)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := eventually(wctx, func() error {
		c, err := pgx.Connect(wctx, raw+"&default_query_exec_mode=simple_protocol")
		if err == nil {
			c.Close(wctx)
		}
		return err
	}); err != nil {
		t.Fatalf("pgbouncer did not answer: %v\n%s", err, out.String())
	}
	return addr
}

// columns returns the names and type OIDs of a SHOW command's result.
func columns(ctx context.Context, c *pgx.Conn, q string) ([]string, []uint32, error) {
	rows, err := c.Query(ctx, q)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var names []string
	var oids []uint32
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
		oids = append(oids, f.DataTypeOID)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", q, err)
	}
	return names, oids, nil
}

// renamedSince lists columns PgBouncer renamed or dropped between the installed version and
// 1.24, whose names the console speaks: installed name -> 1.24's.
var renamedSince = map[string]string{
	"reserve_pool": "reserve_pool_size", // SHOW DATABASES, renamed in 1.23
}

func TestTheConsoleAnswersWithPgBouncersColumns(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startAdminServe(t, "")
	bouncer := startPgBouncer(t, ctx)
	ours := simpleConn(t, ctx, consoleURL(t, inst, "ops", "pgbouncer"))
	theirs := simpleConn(t, ctx, fmt.Sprintf("postgres://%s@%s/pgbouncer?sslmode=disable", pgtest.AppUser, bouncer))
	var version string
	if err := theirs.QueryRow(ctx, "SHOW VERSION").Scan(&version); err != nil {
		t.Fatal(err)
	}
	exact := strings.Contains(version, " 1.24.")
	t.Logf("comparing with %s (exact column lists: %v)", version, exact)
	for _, cmd := range []string{"SHOW POOLS", "SHOW STATS", "SHOW STATS_TOTALS", "SHOW STATS_AVERAGES", "SHOW CLIENTS",
		"SHOW SERVERS", "SHOW DATABASES", "SHOW CONFIG", "SHOW LISTS", "SHOW USERS", "SHOW MEM", "SHOW VERSION", "SHOW STATE"} {
		t.Run(cmd, func(t *testing.T) {
			on, ot, err := columns(ctx, ours, cmd)
			if err != nil {
				t.Fatal(err)
			}
			tn, tt, err := columns(ctx, theirs, cmd)
			if err != nil && !exact && strings.Contains(err.Error(), "invalid command") {
				t.Skipf("%s: %v (newer than this PgBouncer)", version, err)
			} else if err != nil {
				t.Fatalf("PgBouncer: %v", err)
			}
			if exact {
				if fmt.Sprint(on, ot) != fmt.Sprint(tn, tt) {
					t.Errorf("columns differ:\n slipstream %v %v\n pgbouncer  %v %v", on, ot, tn, tt)
				}
				return
			}
			// An older PgBouncer: each of its columns is ours too, with its type, in the same
			// order; 1.24 added others.
			at := 0
			for i, name := range tn {
				if n, ok := renamedSince[name]; ok {
					name = n
				}
				j := at
				for j < len(on) && on[j] != name {
					j++
				}
				if j == len(on) {
					t.Errorf("column %q of PgBouncer is missing or out of order; ours: %v", name, on)
					continue
				}
				if ot[j] != tt[i] {
					t.Errorf("column %q: type %d, PgBouncer's %d", name, ot[j], tt[i])
				}
				at = j + 1
			}
		})
	}
}

// exporterScrape runs pgbouncer_exporter's collector against a console, as its collector.go
// does (github.com/prometheus-community/pgbouncer_exporter, which the Go module proxy here
// does not serve): through lib/pq and database/sql, SHOW VERSION, LISTS, CONFIG, then
// DATABASES, STATS_TOTALS and POOLS with every numeric column turned into a float. It
// returns up (1 when every query succeeded and parsed) and the metrics by "namespace_column".
func exporterScrape(t *testing.T, dsn string) (up float64, metrics map[string]map[string]float64) {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	metrics = map[string]map[string]float64{}
	put := func(name, label string, v float64) {
		if metrics[name] == nil {
			metrics[name] = map[string]float64{}
		}
		metrics[name][label] = v
	}
	up = 1
	fail := func(format string, args ...any) {
		t.Logf("exporter: "+format, args...)
		up = 0
	}
	if rows, err := db.Query("SHOW STATS"); err != nil { // its connection check
		return 0, metrics
	} else {
		rows.Close()
	}
	var version string
	if rows, err := db.Query("SHOW VERSION;"); err != nil {
		fail("SHOW VERSION: %v", err)
	} else {
		cols, _ := rows.Columns()
		if len(cols) != 1 || cols[0] != "version" {
			fail("SHOW VERSION columns %v", cols)
		}
		for rows.Next() {
			rows.Scan(&version)
		}
		rows.Close()
		put("version_info", version, 1)
	}
	twoCols := func(q string, keys map[string]bool) {
		rows, err := db.Query(q)
		if err != nil {
			fail("%s: %v", q, err)
			return
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.RawBytes, len(cols))
			args := make([]any, len(cols))
			for i := range vals {
				args[i] = &vals[i]
			}
			if err := rows.Scan(args...); err != nil {
				fail("%s: %v", q, err)
				return
			}
			if keys != nil && !keys[string(vals[0])] {
				continue
			}
			v, err := strconv.ParseFloat(string(vals[1]), 64)
			if err != nil {
				fail("%s: %s is not a number: %q", q, vals[0], vals[1])
				return
			}
			put(strings.ToLower(strings.TrimSuffix(strings.Fields(q)[1], ";")), string(vals[0]), v)
		}
	}
	twoCols("SHOW LISTS;", nil)
	twoCols("SHOW CONFIG;", map[string]bool{"max_client_conn": true, "max_user_connections": true})
	labels := map[string][]string{"databases": {"name", "host", "port", "database", "force_user", "pool_mode"},
		"stats_totals": {"database"}, "pools": {"database", "user", "pool_mode"}}
	for ns, labelCols := range labels {
		rows, err := db.Query("SHOW " + ns + ";")
		if err != nil {
			fail("SHOW %s: %v", ns, err)
			continue
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			data := make([]any, len(cols))
			args := make([]any, len(cols))
			for i := range data {
				args[i] = &data[i]
			}
			if err := rows.Scan(args...); err != nil {
				fail("SHOW %s: %v", ns, err)
				break
			}
			var label []string
			for i, c := range cols {
				for _, l := range labelCols {
					if c == l {
						switch v := data[i].(type) {
						case string:
							label = append(label, v)
						case int64:
							label = append(label, strconv.FormatInt(v, 10))
						case nil:
							label = append(label, "")
						default:
							fail("SHOW %s: label column %s has type %T", ns, c, v)
						}
					}
				}
			}
			for i, c := range cols {
				if slicesContains(labelCols, c) || c == "load_balance_hosts" {
					continue
				}
				var f float64
				switch v := data[i].(type) {
				case int64:
					f = float64(v)
				case float64:
					f = v
				case []byte:
					if f, err = strconv.ParseFloat(string(v), 64); err != nil {
						fail("SHOW %s: column %s: %q is not a number", ns, c, v)
					}
				case nil:
					f = math.NaN()
				default:
					fail("SHOW %s: column %s has type %T", ns, c, v)
				}
				put(ns+"_"+c, strings.Join(label, ","), f)
			}
		}
		rows.Close()
	}
	return up, metrics
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestPgbouncerExporterScrapesSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startAdminServe(t, "")
	app := connect(t, ctx, inst.plainURL())
	for range 5 {
		var n int
		if err := app.QueryRow(ctx, "select 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	up, m := exporterScrape(t, consoleURL(t, inst, "stats", "pgbouncer"))
	if up != 1 {
		t.Fatalf("pgbouncer_up = %v, want 1", up)
	}
	if q := m["stats_totals_query_count"][pgtest.AppDB]; q < 5 {
		t.Errorf("pgbouncer_stats_queries_pooled_total{database=app} = %v, want at least the 5 queries sent", q)
	}
	if n := m["pools_sv_idle"][pgtest.AppDB+","+pgtest.AppUser+",transaction"] + m["pools_sv_active"][pgtest.AppDB+","+pgtest.AppUser+",transaction"]; n < 1 {
		t.Errorf("server connections of app = %v, want the one origin connection: %v", n, m)
	}
	if m["lists"]["used_clients"] < 1 {
		t.Errorf("SHOW LISTS used_clients = %v, want the open app client", m["lists"]["used_clients"])
	}
	if v := m["version_info"]; len(v) != 1 {
		t.Errorf("version_info %v", v)
	}
	// A stats user may look, not act.
	c := simpleConn(t, ctx, consoleURL(t, inst, "stats", "slipstream"))
	if _, err := c.Exec(ctx, "PAUSE"); err == nil || sqlstate(err) != "08P01" {
		t.Errorf("PAUSE by a stats user: %v, want ERROR 08P01 admin access needed", err)
	}
	// Datadog's PgBouncer check and pgwatch send these.
	for _, q := range []string{"SHOW STATS", "SHOW POOLS", "SHOW DATABASES", "SHOW CONFIG", "SHOW VERSION", "SHOW CLIENTS", "SHOW SERVERS"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	// A wrong password is refused like a database's.
	bad := strings.Replace(consoleURL(t, inst, "stats", "slipstream"), adminPassword, "wrong", 1)
	if _, err := pgx.Connect(ctx, bad); sqlstate(err) != "28P01" {
		t.Errorf("wrong console password: %v, want 28P01", err)
	}
}

// pgbenchScript is a read-mostly pgbench script on a table of the test's own.
func pgbenchScript(t *testing.T, ctx context.Context, table string) string {
	t.Helper()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (aid int primary key, abalance int); "+
		"insert into %s select g, 0 from generate_series(1, 100) g", table, table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table if exists "+table) })
	path := filepath.Join(t.TempDir(), "bench.sql")
	script := fmt.Sprintf("\\set aid random(1, 20)\nselect abalance from %s where aid = :aid;\n", table)
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func pgbenchArgs(t *testing.T, inst *instance, script string, extra ...string) []string {
	u, _ := url.Parse(inst.PGURL)
	return append([]string{"-n", "-f", script, "-h", u.Hostname(), "-p", u.Port(), "-U", pgtest.AppUser}, append(extra, pgtest.AppDB)...)
}

func TestShowQueriesNamesThePgbenchShapeWithItsHitRatio(t *testing.T) {
	t.Parallel()
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench: %v", err)
	}
	ctx := testContext(t, 90*time.Second)
	inst := startAdminServe(t, "")
	table := "admin_bench_" + suffix()
	script := pgbenchScript(t, ctx, table)
	env := []string{"PGPASSWORD=" + pgtest.AppPassword, "PGSSLMODE=disable"}
	out, err := runTool(ctx, t, env, t.TempDir(), pgbench, pgbenchArgs(t, inst, script, "-M", "prepared", "-c", "4", "-j", "4", "-t", "250")...)
	if err != nil || !strings.Contains(out, "1000/1000") {
		t.Fatalf("pgbench: %v\n%s", err, out)
	}
	c := simpleConn(t, ctx, consoleURL(t, inst, "ops", "slipstream"))
	rows, err := c.Query(ctx, "SHOW QUERIES 3")
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		fp, db, query, notCached string
		calls, rows, errs        int64
		total, p50, p99, hit     float64
	}
	var shapes []shape
	for rows.Next() {
		var s shape
		if err := rows.Scan(&s.fp, &s.db, &s.query, &s.calls, &s.total, &s.p50, &s.p99, &s.rows, &s.hit, &s.notCached, &s.errs); err != nil {
			t.Fatal(err)
		}
		shapes = append(shapes, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(shapes) == 0 {
		t.Fatal("SHOW QUERIES is empty after pgbench")
	}
	top := shapes[0]
	t.Logf("SHOW QUERIES top shape after pgbench -M prepared -c 4 -t 250: fingerprint=%s calls=%d total_ms=%.1f p50_ms=%.3f p99_ms=%.3f rows=%d hit_ratio=%.3f not_cached=%q query=%q",
		top.fp, top.calls, top.total, top.p50, top.p99, top.rows, top.hit, top.notCached, top.query)
	if !strings.Contains(top.query, table) || !strings.Contains(top.query, "$1") || top.calls != 1000 || top.rows != 1000 {
		t.Errorf("top shape %+v: want pgbench's select of %s, normalized, 1000 calls and rows", top, table)
	}
	if top.hit < 0.5 {
		t.Errorf("hit ratio %.3f: 1000 reads of 20 keys should mostly hit", top.hit)
	}
	body, code := httpGet(t, "http://"+inst.HTTP+"/api/queries?limit=1")
	var api struct {
		Queries []struct {
			Fingerprint string  `json:"fingerprint"`
			Calls       int64   `json:"calls"`
			HitRatio    float64 `json:"hit_ratio"`
		} `json:"queries"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &api) != nil || len(api.Queries) != 1 || api.Queries[0].Fingerprint != top.fp {
		t.Errorf("/api/queries: %d %s", code, body)
	}
	metrics := inst.metrics(t)
	if !strings.Contains(metrics, "slipstream_query_duration_seconds_count{db=\"app\"}") || strings.Contains(metrics, top.fp) {
		t.Errorf("/metrics: want the per-database latency histogram and no per-shape label")
	}
}

// TestPauseWaitsForTransactionsAndHoldsNewOnes restarts the origin between PAUSE and RESUME
// while pgbench runs, as an operator does for a failover: PAUSE returns once the transactions
// in flight ended, leaving no origin connection; the origin (a PostgreSQL of this test's own)
// restarts; after RESUME pgbench ends with every transaction done and no client error.
func TestPauseWaitsForTransactionsAndHoldsNewOnes(t *testing.T) {
	t.Parallel()
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench: %v", err)
	}
	ctx := testContext(t, 180*time.Second) // a PostgreSQL of its own, started and restarted
	origin, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Stop() })
	originURL := origin.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)
	var b strings.Builder
	fmt.Fprintf(&b, "admin_users = [\"ops\"]\nadmin_password = %q\n[[database]]\nname = %q\norigin = %q\n", adminPassword, pgtest.AppDB, originURL)
	inst := runServe(t, []string{"--config", writeTOML(t, b.String())})

	direct := connect(t, ctx, originURL)
	table := "admin_pause_" + suffix()
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (aid int primary key, abalance int); "+
		"insert into %s select g, 0 from generate_series(1, 100) g", table, table)); err != nil {
		t.Fatal(err)
	}
	direct.Close(ctx)
	var port string // the read goes through the edge to this test's origin, before pgbench starts
	if err := connect(t, ctx, inst.plainURL()).QueryRow(ctx, "select current_setting('port') || ' ' || (select count(*) from "+table+")").Scan(&port); err != nil {
		t.Fatalf("through slipstream: %v (origin port %d)", err, origin.Port)
	}
	script := filepath.Join(t.TempDir(), "bench.sql")
	// A transaction of a read and a write: never answered from the cache, always an origin lease.
	if err := os.WriteFile(script, []byte(fmt.Sprintf("\\set aid random(1, 100)\nbegin;\nselect abalance from %s where aid = :aid;\n"+
		"update %s set abalance = abalance + 1 where aid = :aid;\nend;\n", table, table)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PGPASSWORD=" + pgtest.AppPassword, "PGSSLMODE=disable"}
	done := make(chan string, 1)
	go func() {
		out, err := runTool(ctx, t, env, t.TempDir(), pgbench, pgbenchArgs(t, inst, script, "-M", "extended", "-c", "4", "-j", "4", "-T", "8")...)
		if err != nil {
			out += "\nexit: " + err.Error()
		}
		done <- out
	}()
	c := simpleConn(t, ctx, consoleURL(t, inst, "ops", "pgbouncer"))
	poolConns := func() (inUse, idle int) {
		rows, err := c.Query(ctx, "SHOW POOLS")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			if vals[0] == pgtest.AppDB {
				inUse, idle = int(vals[6].(int32)), int(vals[9].(int32))
			}
		}
		return inUse, idle
	}
	if err := eventually(ctx, func() error {
		if in, _ := poolConns(); in == 0 {
			return fmt.Errorf("pgbench holds no origin connection yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "PAUSE "+pgtest.AppDB); err != nil {
		t.Fatal(err)
	}
	if in, idle := poolConns(); in+idle != 0 {
		t.Errorf("%d origin connections in use, %d idle after PAUSE returned, want none", in, idle)
	}
	var paused int
	if err := c.QueryRow(ctx, "SHOW DATABASES").Scan(new(string), new(any), new(int), new(string), new(string), new(int), new(int),
		new(int), new(int), new(string), new(any), new(int), new(int), new(int), new(int), &paused, new(int)); err != nil {
		t.Fatal(err)
	}
	if paused != 1 {
		t.Errorf("SHOW DATABASES paused = %d, want 1", paused)
	}
	if err := origin.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "RESUME "+pgtest.AppDB); err != nil {
		t.Fatal(err)
	}
	out := <-done
	t.Logf("pgbench across PAUSE, origin restart, RESUME:\n%s", out)
	if strings.Contains(strings.ToLower(out), "error") || strings.Contains(out, "exit:") ||
		!strings.Contains(out, "number of failed transactions: 0") {
		t.Errorf("pgbench saw errors across PAUSE/restart/RESUME")
	}
}

// TestTheConsoleHasAMySQLFace runs the console's commands over the MySQL protocol, with
// go-sql-driver/mysql and the mariadb CLI, on the listener of an embedded database served to
// MySQL clients.
func TestTheConsoleHasAMySQLFace(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()
	cfg := writeTOML(t, fmt.Sprintf("admin_users = [\"ops\"]\nstats_users = [\"stats\"]\nadmin_password = %q\n"+
		"[[database]]\nname = \"main\"\nkind = \"d1\"\nauth_method = \"trust\"\n", adminPassword))
	inst := runServeFor(t, "main", []string{"--config", cfg, "--data-dir", dir})
	ml := mysqlLine.FindStringSubmatch(inst.stdout.String())
	if ml == nil {
		t.Fatalf("no MySQL line in:\n%s", inst.stdout.String())
	}
	mu, err := url.Parse(ml[2])
	if err != nil {
		t.Fatal(err)
	}
	m := []string{"", mu.Host}
	db, err := sql.Open("mysql", "ops:"+adminPassword+"@tcp("+m[1]+")/slipstream")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cols, rows := mysqlShowColumns(t, ctx, db, "SHOW POOLS")
	var pools []string
	for _, r := range rows {
		pools = append(pools, r["database"])
	}
	if strings.Join(cols[:4], ",") != "database,user,cl_active,cl_waiting" || strings.Join(pools, ",") != "main,main#mysql" {
		t.Errorf("SHOW POOLS over MySQL: columns %v, pools %v", cols, pools)
	}
	if _, err := db.ExecContext(ctx, "PAUSE main"); err != nil {
		t.Fatal(err)
	}
	var key, value string
	if err := db.QueryRowContext(ctx, "SHOW STATE").Scan(&key, &value); err != nil || key != "active" || value != "no" {
		t.Errorf("SHOW STATE after PAUSE: %s=%s, %v", key, value, err)
	}
	if _, err := db.ExecContext(ctx, "RESUME main"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SHOW NOTHING"); err == nil || !strings.Contains(err.Error(), "1105") {
		t.Errorf("a bad command: %v, want ERROR 1105", err)
	}
	stats, err := sql.Open("mysql", "stats:"+adminPassword+"@tcp("+m[1]+")/pgbouncer")
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close()
	if _, err := stats.ExecContext(ctx, "PAUSE"); err == nil || !strings.Contains(err.Error(), "admin access needed") {
		t.Errorf("PAUSE by a stats user: %v", err)
	}
	bad, _ := sql.Open("mysql", "ops:wrong@tcp("+m[1]+")/slipstream")
	defer bad.Close()
	if err := bad.PingContext(ctx); err == nil || !strings.Contains(err.Error(), "1045") {
		t.Errorf("wrong password: %v, want 1045", err)
	}
	if cli, err := exec.LookPath("mariadb"); err == nil {
		host, port, _ := net.SplitHostPort(m[1])
		out, err := runTool(ctx, t, []string{"MYSQL_PWD=" + adminPassword}, t.TempDir(), cli, "-h", host, "-P", port, "-u", "ops",
			"slipstream", "-e", "SHOW VERSION")
		if err != nil || !strings.Contains(out, "PgBouncer 1.24.1") {
			t.Errorf("mariadb -e 'SHOW VERSION': %v\n%s", err, out)
		}
	}
}

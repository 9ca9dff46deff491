package e2e

// The admin console beyond serve's PostgreSQL databases (issue 20): MySQL queries in SHOW
// STATS and SHOW QUERIES, SET on the console, and the consoles of a separate edge and pool.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// adminTOML are the console's settings of the tests: admin user ops, stats user stats.
func adminTOML() string {
	return fmt.Sprintf("admin_users = [\"ops\"]\nstats_users = [\"stats\"]\nadmin_password = %q\n", adminPassword)
}

// showRows runs a console command and returns its rows by column name, as text.
func showRows(t testing.TB, ctx context.Context, c *pgx.Conn, q string) []map[string]string {
	t.Helper()
	rows, err := c.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		row := map[string]string{}
		for i, v := range rows.RawValues() {
			row[rows.FieldDescriptions()[i].Name] = string(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// rowOf returns the row whose column key is value, or nil.
func rowOf(rows []map[string]string, key, value string) map[string]string {
	for _, r := range rows {
		if r[key] == value {
			return r
		}
	}
	return nil
}

// num is a console figure as a number (0 when it is not one).
func num(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// mysqlShow runs a console command over the console's MySQL face and returns its rows.
func mysqlShow(t testing.TB, ctx context.Context, db *sql.DB, q string) []map[string]string {
	t.Helper()
	_, rows := mysqlShowColumns(t, ctx, db, q)
	return rows
}

// mysqlShowColumns is mysqlShow with the result's column names, in order.
func mysqlShowColumns(t testing.TB, ctx context.Context, db *sql.DB, q string) ([]string, []map[string]string) {
	t.Helper()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		args := make([]any, len(vals))
		for i := range vals {
			args[i] = &vals[i]
		}
		if err := rows.Scan(args...); err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range cols {
			row[c] = string(vals[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return cols, out
}

// TestMySQLQueriesAreInShowStatsAndShowQueries runs reads through serve in front of MariaDB
// with go-sql-driver/mysql (text and prepared) and the mariadb CLI, then reads SHOW QUERIES,
// SHOW STATS and SHOW CACHE on the console's MySQL face.
func TestMySQLQueriesAreInShowStatsAndShowQueries(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	my := mariaDB(t)
	cfg := writeTOML(t, adminTOML()+fmt.Sprintf("[[database]]\nname = %q\nkind = \"mysql\"\norigin = %q\n", mytest.AppDB,
		my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)))
	inst := runServeFor(t, mytest.AppDB, []string{"--config", cfg})
	app := openMySQL(t, inst.mysqlConfig(t))
	table := "admin_my_" + suffix()
	for _, q := range []string{"CREATE TABLE " + table + " (id int primary key, v int)",
		"INSERT INTO " + table + " VALUES (1, 10), (2, 20), (3, 30), (4, 40), (5, 50)"} {
		if _, err := app.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { app.ExecContext(context.Background(), "DROP TABLE "+table) })
	const reads = 50
	for i := range reads {
		var v int
		if err := app.QueryRowContext(ctx, fmt.Sprintf("SELECT v FROM %s WHERE id = %d", table, i%5+1)).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 { // prepared: COM_STMT_PREPARE, COM_STMT_EXECUTE
		var v int
		if err := app.QueryRowContext(ctx, "SELECT v FROM "+table+" WHERE id = ?", i+1).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(inst.mysqlAddr(t))
	cli, cliErr := exec.LookPath("mariadb")
	if cliErr == nil {
		out, err := runTool(ctx, t, []string{"MYSQL_PWD=" + mytest.AppPassword}, t.TempDir(), cli, "-h", host, "-P", port,
			"-u", mytest.AppUser, mytest.AppDB, "-e", "SELECT count(*) FROM "+table+" WHERE v > 15; SELECT count(*) FROM "+table+" WHERE v > 25")
		if err != nil {
			t.Fatalf("mariadb: %v\n%s", err, out)
		}
	}

	console, err := sql.Open("mysql", "ops:"+adminPassword+"@tcp("+inst.mysqlAddr(t)+")/slipstream")
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	var top map[string]string
	for _, s := range mysqlShow(t, ctx, console, "SHOW QUERIES 50") {
		if strings.Contains(s["query"], table) && strings.Contains(s["query"], "where `id` = ?") {
			top = s
		}
	}
	if top == nil {
		t.Fatalf("SHOW QUERIES has no shape for the reads of %s:\n%v", table, mysqlShow(t, ctx, console, "SHOW QUERIES 50"))
	}
	t.Logf("SHOW QUERIES, MySQL shape: %v", top)
	calls, rows := num(top["calls"]), num(top["rows"])
	if calls < reads || rows != calls || top["database"] != mytest.AppDB || top["errors"] != "0" {
		t.Errorf("shape %v: want at least %d calls, a row each, database %s, no errors", top, reads, mytest.AppDB)
	}
	if num(top["hit_ratio"]) < 0.5 {
		t.Errorf("hit ratio %s: %d reads of 5 keys should mostly hit", top["hit_ratio"], reads)
	}
	stats := rowOf(mysqlShow(t, ctx, console, "SHOW STATS"), "database", mytest.AppDB)
	if stats == nil || num(stats["total_query_count"]) < reads+2 || num(stats["total_xact_count"]) < reads ||
		num(stats["total_received"]) <= 0 || num(stats["total_sent"]) <= 0 || num(stats["total_query_time"]) <= 0 {
		t.Errorf("SHOW STATS row of %s: %v; want its MySQL queries counted", mytest.AppDB, stats)
	}
	cacheRow := rowOf(mysqlShow(t, ctx, console, "SHOW CACHE"), "database", mytest.AppDB)
	if cacheRow == nil || num(cacheRow["hits"]) < reads/2 {
		t.Errorf("SHOW CACHE row of %s: %v; want the hits", mytest.AppDB, cacheRow)
	}
	if cliErr == nil {
		out, err := runTool(ctx, t, []string{"MYSQL_PWD=" + adminPassword}, t.TempDir(), cli, "-h", host, "-P", port, "-u", "stats",
			"pgbouncer", "-e", "SHOW QUERIES 50")
		if err != nil || !strings.Contains(out, "count ( ? ) from `"+table+"` where `v` > ?") {
			t.Errorf("mariadb -e 'SHOW QUERIES': want the CLI's count(*) shape; %v\n%q", err, out)
		}
	}
}

// TestSetChangesASettingUntilReload sets default_pool_size and log_level on serve's console:
// SHOW CONFIG and SHOW DATABASES show the new pool size, and RELOAD brings the file's back.
func TestSetChangesASettingUntilReload(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startAdminServe(t, "", "max_connections = 7")
	c := simpleConn(t, ctx, consoleURL(t, inst, "ops", "pgbouncer"))
	setting := func(key string) map[string]string { return rowOf(showRows(t, ctx, c, "SHOW CONFIG"), "key", key) }
	if s := setting("default_pool_size"); s == nil || s["value"] != "7" || s["changeable"] != "yes" {
		t.Fatalf("default_pool_size before SET: %v", s)
	}
	for _, q := range []string{"SET default_pool_size = 3", "SET log_level TO 'debug'"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if s := setting("default_pool_size"); s["value"] != "3" {
		t.Errorf("default_pool_size after SET: %v", s)
	}
	if s := setting("log_level"); s["value"] != "debug" {
		t.Errorf("log_level after SET: %v", s)
	}
	if db := rowOf(showRows(t, ctx, c, "SHOW DATABASES"), "name", pgtest.AppDB); db["pool_size"] != "3" {
		t.Errorf("SHOW DATABASES after SET default_pool_size = 3: %v", db)
	}
	for q, want := range map[string]string{
		"SET default_pool_size = none": "want a number",
		"SET listen_port = 7000":       "cannot be changed online",
		"SET no_such_thing = 1":        "unknown config parameter",
		"SET log_level = loud":         "want debug, info, warn or error",
	} {
		if _, err := c.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), want) || sqlstate(err) != "08P01" {
			t.Errorf("%s: %v; want 08P01 %q", q, err, want)
		}
	}
	stats := simpleConn(t, ctx, consoleURL(t, inst, "stats", "pgbouncer"))
	if _, err := stats.Exec(ctx, "SET default_pool_size = 5"); err == nil || !strings.Contains(err.Error(), "admin access needed") {
		t.Errorf("SET by a stats user: %v", err)
	}
	if _, err := c.Exec(ctx, "RELOAD"); err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	if s := setting("default_pool_size"); s["value"] != "7" {
		t.Errorf("default_pool_size after RELOAD: %v, want the file's 7", s)
	}
	if db := rowOf(showRows(t, ctx, c, "SHOW DATABASES"), "name", pgtest.AppDB); db["pool_size"] != "7" {
		t.Errorf("SHOW DATABASES after RELOAD: %v, want the file's 7", db)
	}
	if s := setting("log_level"); s["value"] != "info" {
		t.Errorf("log_level after RELOAD: %v", s)
	}
}

var poolConsoleLine = regexp.MustCompile(`(?m)^console: postgres://(\S+)/slipstream$`)

// TestTheConsolesOfASeparateEdgeAndPool runs an edge and a pool with admin users: the edge's
// console has its clients, its query shapes, its tunnel and where each database is placed;
// the pool's, on its own pg_listen, has the origin connections, the edge connected with its
// sessions, PAUSE/RESUME and SET default_pool_size; each serves its dashboard's figures.
func TestTheConsolesOfASeparateEdgeAndPool(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	dir := makeCerts(t)
	toml := writeTOML(t, adminTOML()+fmt.Sprintf("[[database]]\nname = %q\norigin = %q\n", pgtest.AppDB, directURL()))
	pool := startNode(t, "pool", "--config", toml, "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--pg-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--region", "test")
	edge := startNode(t, "edge", "--config", toml, "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir())
	m := poolConsoleLine.FindStringSubmatch(pool.stdout)
	if m == nil {
		t.Fatalf("the pool printed no console line:\n%s", pool.stdout)
	}
	poolConsole := fmt.Sprintf("postgres://ops:%s@%s/pgbouncer?sslmode=disable", adminPassword, m[1])

	app := connect(t, ctx, edge.appURL(t))
	for i := range 5 {
		var n int
		if err := app.QueryRow(ctx, fmt.Sprintf("SELECT %d + 1", i)).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	eu, err := url.Parse(edge.appURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ec := simpleConn(t, ctx, fmt.Sprintf("postgres://ops:%s@%s/slipstream?sslmode=disable", adminPassword, eu.Host))

	if p := rowOf(showRows(t, ctx, ec, "SHOW POOLS"), "database", pgtest.AppDB); p == nil || num(p["cl_active"]) < 1 {
		t.Errorf("edge SHOW POOLS: %v; want app with its client", p)
	}
	if cl := rowOf(showRows(t, ctx, ec, "SHOW CLIENTS"), "database", pgtest.AppDB); cl == nil {
		t.Error("edge SHOW CLIENTS: no client of app")
	}
	tunnels := showRows(t, ctx, ec, "SHOW TUNNELS")
	if len(tunnels) != 1 || tunnels[0]["pool"] != "test" || tunnels[0]["up"] != "yes" || tunnels[0]["addr"] != pool.tunnelAddr(t) {
		t.Errorf("edge SHOW TUNNELS: %v; want the tunnel to pool test, up", tunnels)
	}
	if pl := rowOf(showRows(t, ctx, ec, "SHOW PLACEMENT"), "database", pgtest.AppDB); pl == nil || pl["pool"] != "test" {
		t.Errorf("edge SHOW PLACEMENT: %v; want app at pool test", pl)
	}
	if q := rowOf(showRows(t, ctx, ec, "SHOW QUERIES"), "query", "SELECT $1 + $2"); q == nil || q["calls"] != "5" {
		t.Errorf("edge SHOW QUERIES: %v; want the 5 calls of SELECT $1 + $2", showRows(t, ctx, ec, "SHOW QUERIES"))
	}
	if _, err := ec.Exec(ctx, "PAUSE "+pgtest.AppDB); err == nil || !strings.Contains(err.Error(), "pool's") {
		t.Errorf("PAUSE on the edge: %v; want a refusal that sends to the pool's console", err)
	}

	pc := simpleConn(t, ctx, poolConsole)
	if p := rowOf(showRows(t, ctx, pc, "SHOW POOLS"), "database", pgtest.AppDB); p == nil || num(p["sv_idle"])+num(p["sv_active"]) < 1 {
		t.Errorf("pool SHOW POOLS: %v; want app's origin connection", p)
	}
	if len(showRows(t, ctx, pc, "SHOW SERVERS")) < 1 {
		t.Error("pool SHOW SERVERS: no origin connection")
	}
	edges := showRows(t, ctx, pc, "SHOW TUNNELS")
	if len(edges) != 1 || edges[0]["up"] != "yes" || num(edges[0]["sessions"]) < 1 {
		t.Errorf("pool SHOW TUNNELS: %v; want the edge, with the app's session", edges)
	}
	for _, q := range []string{"PAUSE " + pgtest.AppDB, "RESUME " + pgtest.AppDB, "SET default_pool_size = 4"} {
		if _, err := pc.Exec(ctx, q); err != nil {
			t.Errorf("pool console %s: %v", q, err)
		}
	}
	if db := rowOf(showRows(t, ctx, pc, "SHOW DATABASES"), "name", pgtest.AppDB); db["pool_size"] != "4" {
		t.Errorf("pool SHOW DATABASES after SET default_pool_size = 4: %v", db)
	}
	var n int
	if err := app.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 3)").Scan(&n); err != nil || n != 3 {
		t.Errorf("a query after the pool's PAUSE and RESUME: %d, %v", n, err)
	}

	for name, nd := range map[string]*node{"edge": edge, "pool": pool} {
		addr := metricsLine.FindStringSubmatch(nd.stdout)[1]
		body, code := httpGet(t, "http://"+addr+"/api/overview")
		var o struct {
			Pools   []struct{ Name string } `json:"pools"`
			Tunnels []struct{ Up bool }     `json:"tunnels"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &o) != nil || len(o.Pools) != 1 || len(o.Tunnels) != 1 || !o.Tunnels[0].Up {
			t.Errorf("%s /api/overview: %d %s", name, code, body)
		}
		if _, code := httpGet(t, "http://"+addr+"/"); code != 200 {
			t.Errorf("%s dashboard: %d", name, code)
		}
	}
	t.Run("the dashboards render in Chromium", func(t *testing.T) {
		bin := chromium(t)
		for name, nd := range map[string]*node{"edge": edge, "pool": pool} {
			addr := metricsLine.FindStringSubmatch(nd.stdout)[1]
			dom, logs := headless(t, ctx, bin, "http://"+addr+"/", "--virtual-time-budget=3000", "--dump-dom")
			if !strings.Contains(dom, "<td>"+pgtest.AppDB+"</td>") || !strings.Contains(dom, `<span class="pill ok">up</span>`) {
				t.Errorf("%s dashboard: no row of database %s or no tunnel up in its page", name, pgtest.AppDB)
			}
			for _, l := range consoleLine.FindAllString(logs, -1) {
				t.Errorf("%s dashboard logged to its console: %s", name, l)
			}
		}
	})
}

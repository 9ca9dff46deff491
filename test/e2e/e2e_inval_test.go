package e2e

// Two edges share one pool: a write through one invalidates the other's cache before the
// write's answer reaches its client (DESIGN.md invariant 1).

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// hits reads the node's slipstream_cache_queries_total{status="hit"} of database app.
func (n *node) hits(t *testing.T) float64 {
	t.Helper()
	m := metricsLine.FindStringSubmatch(n.stdout)
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", n.stdout)
	}
	body, _ := httpGet(t, "http://"+m[1]+"/metrics")
	v, _ := metricValue(body, "slipstream_cache_queries_total", `db="app"`, `status="hit"`)
	return v
}

func TestAWriteThroughOneEdgeInvalidatesTheOtherEdgesCache(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", directURL())
	edge := func() *node {
		return startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	}
	a, b := edge(), edge()
	table := "inval_" + suffix()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })
	read := "select v from " + table + " where id = $1"

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		writer := connectMode(t, ctx, a.appURL(t), mode)
		reader := connectMode(t, ctx, b.appURL(t), mode)
		for i := 1; i <= 4; i++ {
			// Read until edge b answers from its cache (a key is kept the second time it misses).
			var before int
			for hits := b.hits(t); ; {
				if err := reader.QueryRow(ctx, read, 1).Scan(&before); err != nil {
					t.Fatal(err)
				}
				if b.hits(t) > hits {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("%v: edge b never answered from its cache", mode)
				}
			}
			want := before + 1
			if i%2 == 0 { // in a transaction that commits
				tx, err := writer.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, "update "+table+" set v = v + 1 where id = $1", 1); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			} else if _, err := writer.Exec(ctx, "update "+table+" set v = v + 1 where id = $1", 1); err != nil {
				t.Fatal(err)
			}
			var after int
			if err := reader.QueryRow(ctx, read, 1).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if after != want {
				t.Fatalf("%v, round %d: edge b read %d right after the update through edge a, want %d", mode, i, after, want)
			}
		}
	}
}

// mysqlConfigOf is the client configuration of the mysql:// line a node printed for database app.
func (n *node) mysqlConfigOf(t testing.TB) *mysql.Config {
	t.Helper()
	for _, m := range databaseLine.FindAllStringSubmatch(n.stdout, -1) {
		if m[1] == mytest.AppDB && strings.HasPrefix(m[2], "mysql://") {
			in := &instance{PGURL: m[2]}
			return in.mysqlConfig(t)
		}
	}
	t.Fatalf("no mysql:// line for database %s in:\n%s", mytest.AppDB, n.stdout)
	return nil
}

// startMySQLPool runs `slipstream pool` (region "test") in front of the test MariaDB with
// certificates of a new deployment, and returns it, the certificates' folder and the origin
// URL, for edges.
func startMySQLPool(t testing.TB) (pool *node, certs, origin string) {
	t.Helper()
	certs = makeCerts(t)
	origin = mariaDB(t).URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)
	pool = startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", certs, "--data-dir", t.TempDir(), "--region", "test", "--origin", origin)
	return pool, certs, origin
}

func TestAMySQLWriteThroughOneEdgeInvalidatesTheOtherEdgesCache(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	pool, dir, origin := startMySQLPool(t)
	edge := func() *node {
		return startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(),
			"--origin", origin)
	}
	a, b := edge(), edge()
	table := "inval_" + suffix()
	direct := openMySQL(t, directMySQLConfig(t))
	if _, err := direct.ExecContext(ctx, "CREATE TABLE "+table+" (id int primary key, v int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.ExecContext(context.Background(), "DROP TABLE "+table) })
	read := "SELECT v FROM " + table + " WHERE id = ?"

	for _, interpolate := range []bool{false, true} { // prepared statements, then COM_QUERY
		wc, rc := a.mysqlConfigOf(t), b.mysqlConfigOf(t)
		wc.InterpolateParams, rc.InterpolateParams = interpolate, interpolate
		writer, reader := openMySQL(t, wc), openMySQL(t, rc)
		for i := 1; i <= 4; i++ {
			var before int
			for hits := b.hits(t); ; {
				if err := reader.QueryRowContext(ctx, read, 1).Scan(&before); err != nil {
					t.Fatal(err)
				}
				if b.hits(t) > hits {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("interpolateParams=%v: edge b never answered from its cache", interpolate)
				}
			}
			if i%2 == 0 {
				tx, err := writer.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET v = v + 1 WHERE id = ?", 1); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := writer.ExecContext(ctx, "UPDATE "+table+" SET v = v + 1 WHERE id = ?", 1); err != nil {
				t.Fatal(err)
			}
			var after int
			if err := reader.QueryRowContext(ctx, read, 1).Scan(&after); err != nil {
				t.Fatal(err)
			}
			if after != before+1 {
				t.Fatalf("interpolateParams=%v, round %d: edge b read %d right after the update through edge a, want %d", interpolate, i, after, before+1)
			}
		}
	}
}

package e2e

// Two edges share one pool and the pool's cache: a read one edge's cache keeps answers the
// other edge's first read without the origin, and a write through either edge reaches both at
// once (DESIGN.md invariant 1, across the two layers).

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// metric reads one sample of the node's /metrics.
func (n *node) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m := metricsLine.FindStringSubmatch(n.stdout)
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", n.stdout)
	}
	body, _ := httpGet(t, "http://"+m[1]+"/metrics")
	v, _ := metricValue(body, name, labels...)
	return v
}

// poolHits is the pool's slipstream_pool_cache_queries_total{status="hit"} of database db.
func (n *node) poolHits(t *testing.T, db string) float64 {
	return n.metric(t, "slipstream_pool_cache_queries_total", `db="`+db+`"`, `status="hit"`)
}

// sharedCacheSteps runs the scenario against any protocol: read(edge) reads the row through
// edge 0 or 1, directWrite changes it at the origin behind Slipstream's back, write(edge)
// changes it through an edge. The row starts at 0.
func sharedCacheSteps(t *testing.T, ctx context.Context, label, db string, pool *node, edges [2]*node,
	read func(int) int, directWrite func(int), write func(int)) {
	t.Helper()
	// Read through edge 0 until its own cache answers: the key has missed twice, at the edge
	// and at the pool, which keeps the second answer.
	for hits := edges[0].hits(t); ; {
		if v := read(0); v != 0 {
			t.Fatalf("%s: edge 0 read %d, want 0", label, v)
		}
		if edges[0].hits(t) > hits {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: edge 0 never answered from its cache", label)
		}
	}
	// A write at the origin directly is nobody's to report: a cache answers from now on.
	directWrite(100)
	if v := read(0); v != 0 {
		t.Fatalf("%s: edge 0 read %d after a write at the origin, want 0 from its cache", label, v)
	}
	// Edge 1 has never seen the read: the pool's cache answers it.
	poolHits := pool.poolHits(t, db)
	if v := read(1); v != 0 {
		t.Fatalf("%s: edge 1's first read answered %d, want 0 from the pool's cache (100 is the origin's)", label, v)
	}
	if got := pool.poolHits(t, db); got != poolHits+1 {
		t.Errorf("%s: the pool's cache hits went from %v to %v on edge 1's first read, want one more", label, poolHits, got)
	}
	if got := edges[1].metric(t, "slipstream_cache_queries_total", `db="app"`, `status="poolhit"`); got < 1 {
		t.Errorf("%s: edge 1 counted %v reads answered by the pool's cache, want at least 1", label, got)
	}
	// A write through edge 1 clears both layers before its answer: both edges read it at once.
	write(1)
	for _, e := range []int{0, 1} {
		if v := read(e); v != 101 {
			t.Fatalf("%s: edge %d read %d right after the write through edge 1, want 101", label, e, v)
		}
	}
}

func TestThePoolCacheAnswersOneEdgeFromAnothersRead(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", directURL())
	var edges [2]*node
	for i := range edges {
		edges[i] = startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	}
	direct := connect(t, ctx, directURL())
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		table := "poolcache_" + suffix()
		if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })
		conns := [2]*pgx.Conn{connectMode(t, ctx, edges[0].appURL(t), mode), connectMode(t, ctx, edges[1].appURL(t), mode)}
		sharedCacheSteps(t, ctx, mode.String(), "app", pool, edges,
			func(e int) int {
				var v int
				if err := conns[e].QueryRow(ctx, "select v from "+table+" where id = $1", 1).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			},
			func(v int) {
				if _, err := direct.Exec(ctx, "update "+table+" set v = $1 where id = 1", v); err != nil {
					t.Fatal(err)
				}
			},
			func(e int) {
				if _, err := conns[e].Exec(ctx, "update "+table+" set v = v + 1 where id = $1", 1); err != nil {
					t.Fatal(err)
				}
			})
	}
}

func TestThePoolCacheAnswersOneMySQLEdgeFromAnothersRead(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	pool, dir, origin := startMySQLPool(t)
	var edges [2]*node
	for i := range edges {
		edges[i] = startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(),
			"--origin", origin)
	}
	direct := openMySQL(t, directMySQLConfig(t))
	for _, interpolate := range []bool{false, true} { // prepared statements, then COM_QUERY
		table := "poolcache_" + suffix()
		for _, q := range []string{"CREATE TABLE " + table + " (id int primary key, v int)", "INSERT INTO " + table + " VALUES (1, 0)"} {
			if _, err := direct.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { direct.ExecContext(context.Background(), "DROP TABLE "+table) })
		var dbs [2]*sql.DB
		for i := range dbs {
			cfg := edges[i].mysqlConfigOf(t)
			cfg.InterpolateParams = interpolate
			dbs[i] = openMySQL(t, cfg)
		}
		sharedCacheSteps(t, ctx, fmt.Sprintf("interpolateParams=%v", interpolate), mytest.AppDB, pool, edges,
			func(e int) int {
				var v int
				if err := dbs[e].QueryRowContext(ctx, "SELECT v FROM "+table+" WHERE id = ?", 1).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			},
			func(v int) {
				if _, err := direct.ExecContext(ctx, "UPDATE "+table+" SET v = ? WHERE id = 1", v); err != nil {
					t.Fatal(err)
				}
			},
			func(e int) {
				if _, err := dbs[e].ExecContext(ctx, "UPDATE "+table+" SET v = v + 1 WHERE id = ?", 1); err != nil {
					t.Fatal(err)
				}
			})
	}
}

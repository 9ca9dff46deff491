package e2e

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// BenchmarkD1PointRead compares a primary-key SELECT on the embedded D1 database through the
// whole edge (pgx over TCP, the edge, the pool, the D1 session) uncached and cached, with the
// same query on the same SQLite file in-process (database/sql and the modernc driver), the
// floor D1 can't go below. The interleaved sub-benchmark runs all three in one loop and
// reports each per read and their ratios to in-process, which is the figure to compare across
// machines (issue 5):
//
//	go test -run XXX -bench D1PointRead/interleaved -benchtime 20000x ./test/e2e/
func BenchmarkD1PointRead(b *testing.B) {
	ctx := context.Background()
	inst := runServeFor(b, "main", nil)
	cfg, err := pgx.ParseConfig(withQuery(inst.PGURL, "sslmode", "disable"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Exec(ctx, `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000)
		INSERT INTO kv SELECT x, 'value ' || x FROM n`); err != nil {
		b.Fatal(err)
	}
	direct, err := sql.Open("sqlite", "file:"+filepath.Join(inst.DataDir, "d1", "main.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	direct.SetMaxOpenConns(1)
	stmt, err := direct.PrepareContext(ctx, `SELECT v FROM kv WHERE id = ?`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()

	read := func(query string) func(i int) {
		return func(i int) {
			var v string
			if err := c.QueryRow(ctx, query, int64(i%10000+1)).Scan(&v); err != nil {
				b.Fatal(err)
			}
		}
	}
	uncached := read(`/* slipstream: cache=off */ SELECT v FROM kv WHERE id = $1`)
	cached := read(`SELECT v FROM kv WHERE id = $1`)
	inProcess := func(i int) {
		var v string
		if err := stmt.QueryRowContext(ctx, int64(i%10000+1)).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
	// Fill the cache (a key is kept at its first miss; twice, for ristretto's asynchronous sets).
	for i := range 20000 {
		cached(i)
	}
	for _, r := range []struct {
		name string
		fn   func(int)
	}{{"edge-uncached", uncached}, {"edge-cached", cached}, {"in-process", inProcess}} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r.fn(i)
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		var tu, tc, tp time.Duration
		n := 0
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			uncached(i)
			t1 := time.Now()
			cached(i)
			t2 := time.Now()
			inProcess(i)
			tp += time.Since(t2)
			tc += t2.Sub(t1)
			tu += t1.Sub(t0)
			n++
		}
		per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
		b.ReportMetric(per(tu), "uncached-ns/read")
		b.ReportMetric(per(tc), "cached-ns/read")
		b.ReportMetric(per(tp), "in-process-ns/read")
		b.ReportMetric(float64(tu)/float64(tp), "uncached/in-process")
		b.ReportMetric(float64(tc)/float64(tp), "cached/in-process")
	})
}

package d1

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkPointRead compares a primary-key SELECT through the whole protocol path (pgx, its
// default statement cache, an in-memory connection, a session) with the same query on
// database/sql and the modernc driver in-process, the floor D1 can't go below. The interleaved
// run measures both in one loop and reports their ratio, which is what to compare across
// machines.
func BenchmarkPointRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c := connect(b, db, pgx.QueryExecModeCacheStatement)
	if _, err := c.Exec(ctx, `CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT);
		WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000)
		INSERT INTO kv SELECT x, 'value ' || x FROM n`); err != nil {
		b.Fatal(err)
	}
	direct, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
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

	viaPgx := func(i int) {
		var v string
		if err := c.QueryRow(ctx, `SELECT v FROM kv WHERE id = $1`, int64(i%10000+1)).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
	viaSQL := func(i int) {
		var v string
		if err := stmt.QueryRowContext(ctx, int64(i%10000+1)).Scan(&v); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("pgx-over-Dial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			viaPgx(i)
		}
	})
	b.Run("database-sql-in-process", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			viaSQL(i)
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		var tPgx, tSQL time.Duration
		n := 0
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			viaPgx(i)
			t1 := time.Now()
			viaSQL(i)
			tSQL += time.Since(t1)
			tPgx += t1.Sub(t0)
			n++
		}
		b.ReportMetric(float64(tPgx.Nanoseconds())/float64(n), "pgx-ns/read")
		b.ReportMetric(float64(tSQL.Nanoseconds())/float64(n), "direct-ns/read")
		b.ReportMetric(float64(tPgx)/float64(tSQL), "ratio")
	})
}

package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
)

// BenchmarkMySQLPointSelect runs sysbench oltp_point_select's statement, prepared, from 8
// clients directly against MariaDB and through the edge and the pool side (10 origin
// connections), without and with the result cache (1,000 rows: a hot set), in one run:
// compare the sub-benchmarks' ns/op for the ratios.
func BenchmarkMySQLPointSelect(b *testing.B) {
	direct, err := sql.Open("mysql", mysrv.DSN(mytest.AppUser, mytest.AppPassword, mytest.AppDB))
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	ctx := context.Background()
	const rows = 1000
	if _, err := direct.ExecContext(ctx, "CREATE OR REPLACE TABLE sbtest1 (id int primary key, k int, c char(120), pad char(60))"); err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= rows; i++ {
		if _, err := direct.ExecContext(ctx, "INSERT INTO sbtest1 VALUES (?, ?, ?, ?)", i, i, fmt.Sprintf("c-%0110d", i), "pad"); err != nil {
			b.Fatal(err)
		}
	}
	addr := startPooledEdge(b, mysqlpool.Config{MaxConns: 10}, Database{Name: "sbtest", User: "sb", Password: "sb-pw"})
	results, err := cache.New(64 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer results.Close()
	cached := startPooledEdgeWith(b, Config{Cache: results}, mysqlpool.Config{MaxConns: 10}, Database{Name: "sbtest", User: "sb", Password: "sb-pw"})
	for _, target := range []struct {
		name string
		db   *sql.DB
	}{
		{"direct", direct},
		{"edge", openDSN(b, addr, "sb", "sb-pw", "sbtest", "")},
		{"edge-cached", openDSN(b, cached, "sb", "sb-pw", "sbtest", "")},
	} {
		b.Run(target.name, func(b *testing.B) {
			target.db.SetMaxOpenConns(8)
			target.db.SetMaxIdleConns(8)
			stmt, err := target.db.PrepareContext(ctx, "SELECT c FROM sbtest1 WHERE id = ?")
			if err != nil {
				b.Fatal(err)
			}
			defer stmt.Close()
			b.SetParallelism(4) // 4 x GOMAXPROCS clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var c string
				for pb.Next() {
					if err := stmt.QueryRowContext(ctx, rand.IntN(rows)+1).Scan(&c); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

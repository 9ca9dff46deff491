package tunnel_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/bench"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/pool"
)

// wanRTT is the round-trip time the relay puts between the edge and the pool.
const wanRTT = 40 * time.Millisecond

// BenchmarkWANRoundTrips counts WAN round trips through the edge with a UDP relay adding
// wanRTT between it and the pool; the client and the origin are each next to their end. Each
// sub-benchmark reports RTT/op, the mean time of an operation in multiples of wanRTT:
//
//	go test ./tunnel -run '^$' -bench WANRoundTrips -benchtime 20x
func BenchmarkWANRoundTrips(b *testing.B) {
	edgeTLS, poolTLS := certs(b)
	addr, _ := startPool(b, poolTLS, pool.Config{MaxConns: 4})
	ctx := context.Background()
	relay, err := bench.StartRelay(ctx, bench.RelayConfig{To: addr, RTT: wanRTT, UDP: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { relay.Close() })
	client := dialPool(b, relay.Addr(), edgeTLS)
	if _, err := client.Profile(ctx, pgtest.AppDB); err != nil { // warm: the profile is cached from now on
		b.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(startEdge(b, client))
	if err != nil {
		b.Fatal(err)
	}
	// One round trip per query, parameters included (Parse, Bind, Execute, Sync in one batch).
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec

	report := func(b *testing.B, total time.Duration) {
		b.ReportMetric(float64(total)/float64(b.N)/float64(wanRTT), "RTT/op")
	}
	// connectAndQuery times a new connection and its first query, in RTTs.
	connectAndQuery := func(cfg *pgx.ConnConfig) func(b *testing.B) {
		return func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				conn, err := pgx.ConnectConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				var n int
				if err := conn.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				conn.Close(ctx)
			}
			report(b, total)
		}
	}
	b.Run("new connection and first query", connectAndQuery(cfg))
	// The peer: the same, straight to PostgreSQL across the same RTT (a TCP relay, which also
	// charges a round trip for TCP's handshake), with TLS off as through the edge.
	direct, err := bench.StartRelay(ctx, bench.RelayConfig{To: net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port)), RTT: wanRTT})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { direct.Close() })
	dcfg, err := pgx.ParseConfig("postgres://" + pgtest.AppUser + ":" + pgtest.AppPassword + "@" + direct.Addr() + "/" + pgtest.AppDB + "?sslmode=disable")
	if err != nil {
		b.Fatal(err)
	}
	dcfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	b.Run("direct: new connection and first query", connectAndQuery(dcfg))
	b.Run("transaction of 3 statements", func(b *testing.B) {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			tx, err := conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 3 {
				if _, err := tx.Exec(ctx, "SELECT $1::int", i); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		report(b, total)
	})
}

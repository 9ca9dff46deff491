package e2e

// The differential wire scripts of internal/pgdiff, played on PostgreSQL itself and through
// Slipstream (serve, and edge + pool over the QUIC tunnel): every backend message must be the
// database's own, in the database's order.

import (
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgdiff"
)

func TestWireScriptsAnswerAsPostgreSQLThroughServe(t *testing.T) {
	t.Parallel()
	inst := startServe(t)
	playScripts(t, inst.plainURL())
}

func TestWireScriptsAnswerAsPostgreSQLThroughEdgeAndPool(t *testing.T) {
	t.Parallel()
	playScripts(t, startSplit(t))
}

// startSplit runs a pool and an edge joined by the QUIC tunnel and returns the edge's app URL.
func startSplit(t *testing.T) string {
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", directURL())
	edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	return edge.appURL(t)
}

// playScripts plays every script on PostgreSQL and on the server at url, and compares.
func playScripts(t *testing.T, url string) {
	scripts, err := pgdiff.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	direct := directURL()
	for _, s := range scripts {
		t.Run(s.Name, func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			want, err := pgdiff.Run(ctx, pgdiff.Target{URL: direct, Direct: direct}, s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgdiff.Run(ctx, pgdiff.Target{URL: url, Direct: direct}, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := pgdiff.Compare(want, got); err != nil {
				t.Errorf("%v\nPostgreSQL's whole transcript:\n%s", err, want)
			}
		})
	}
}

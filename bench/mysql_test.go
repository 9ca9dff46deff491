package bench

import (
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// The harness's MySQL side (go-sql-driver/mysql, the table, the workloads) against a real
// MariaDB, direct only; cmd/slipstream's tests run it through Slipstream's MySQL listener.
func TestLatencyAndThroughputSpeakMySQL(t *testing.T) {
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd is not installed (./scripts/test.sh installs it)")
	}
	ctx := t.Context()
	srv, err := mytest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	origin := srv.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)
	const rtt = 20 * time.Millisecond
	r := startRelay(t, RelayConfig{To: srv.Addr(), RTT: rtt})
	u, _ := url.Parse(origin)
	u.Host = r.Addr()

	results, err := RunLatency(ctx, LatencyConfig{Direct: u.String(), Setup: origin, Queries: 3, RTT: rtt})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d series, want new-connection and persistent direct: %+v", len(results), results)
	}
	// A new connection: TCP, the server's greeting, authentication, the query.
	for i, min := range []float64{3.9, 0.99} {
		r := results[i]
		if r.Protocol != MySQL || r.Mode != Direct || r.WANRoundTrips == nil || *r.WANRoundTrips < min {
			t.Errorf("%s %s %s: %v round trips, want at least %v", r.Protocol, r.Pattern, r.Mode, r.WANRoundTrips, min)
		}
	}

	tp, err := RunThroughput(ctx, ThroughputConfig{Targets: []Target{{Name: Direct, URL: origin}},
		Clients: 2, Duration: 300 * time.Millisecond, ReadRatio: 0.5, HotSet: 20})
	if err != nil {
		t.Fatal(err)
	}
	if tp[0].Ops == 0 || tp[0].Errors != 0 || tp[0].Protocol != MySQL {
		t.Errorf("throughput: %+v, want operations and no errors", tp[0])
	}

	// The freshness run's writer and readers on the same connector: read straight from the
	// origin, no read may answer a value older than a write committed before it started.
	fr, err := RunFreshness(ctx, FreshnessConfig{Direct: origin, Via: origin, Writes: 30, Clients: 2,
		Pace: time.Millisecond, Bound: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if fr.Reads == 0 || fr.StaleReads != 0 || fr.OverBound != 0 {
		t.Errorf("freshness read at the origin: %+v, want reads and none stale", fr)
	}
}

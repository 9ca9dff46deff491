package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/bench"
	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// runMainEnv makes the test binary behave as the slipstream binary (TestMain calls
// runAsChild), so that `bench latency --topology local`, which starts os.Executable() as
// certs, pool and edge (or serve), can run under go test.
const runMainEnv = "SLIPSTREAM_TEST_RUN_MAIN"

// runAsChild is main for the test binary started as slipstream.
func runAsChild(ctx context.Context, args []string) int {
	return cli.Run(ctx, args, os.Stdout, os.Stderr)
}

// latencyDoc is the JSON of `bench latency --json`, read loosely to check its field names.
type latencyDoc struct {
	Results []map[string]any `json:"results"`
}

func readLatencyJSON(t *testing.T, path string) latencyDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc latencyDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return doc
}

// result returns the series of doc with pattern and mode.
func (doc latencyDoc) result(t *testing.T, pattern, mode string) map[string]any {
	t.Helper()
	for _, r := range doc.Results {
		if r["pattern"] == pattern && r["mode"] == mode {
			return r
		}
	}
	t.Fatalf("no %s %s series in %v", pattern, mode, doc.Results)
	return nil
}

func TestBenchLatencyComparesDirectUncachedAndCached(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	// The database 150 ms away on the direct path; Slipstream next to it (in-process serve). A
	// round trip long enough that a loaded machine's local query does not look like one: at
	// 50 ms, a run beside three other test processes once took a median 56 ms per local query.
	const rtt = 150 * time.Millisecond
	relay, err := bench.StartRelay(ctx, bench.RelayConfig{To: net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port)), RTT: rtt})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	u, _ := url.Parse(directURL())
	u.Host = relay.Addr()
	in := startServe(t)
	dir := t.TempDir()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code := cli.Run(ctx, []string{"bench", "latency", "--direct", u.String(), "--via", in.plainURL(), "--rtt", rtt.String(),
		"--queries", "5", "--json", filepath.Join(dir, "r.json"), "--chart", filepath.Join(dir, "r.svg")}, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	t.Logf("stdout:\n%s", stdout)
	if strings.Contains(stdout.String()+stderr.String(), pgtest.AppPassword) {
		t.Error("the output shows the password")
	}
	if n := strings.Count(stdout.String(), "postgres"); n != 6 {
		t.Errorf("table has %d series, want 6:\n%s", n, stdout.String())
	}
	doc := readLatencyJSON(t, filepath.Join(dir, "r.json"))
	// Direct: TCP handshake, three SCRAM round trips, the query.
	if trips := doc.result(t, bench.NewConnection, bench.Direct)["wan_round_trips"].(float64); trips < 4.9 {
		t.Errorf("direct new connection took %v round trips, want at least 5", trips)
	}
	if trips := doc.result(t, bench.Persistent, bench.Direct)["wan_round_trips"].(float64); trips < 0.99 {
		t.Errorf("direct persistent query took %v round trips, want at least 1", trips)
	}
	// Nothing but the query crosses the WAN when cached; here serve is next to the origin,
	// so uncached costs nothing either, and neither may cross the relay (a whole RTT).
	for _, mode := range []string{bench.Uncached, bench.Cached} {
		if trips := doc.result(t, bench.Persistent, mode)["wan_round_trips"].(float64); trips >= 0.9 {
			t.Errorf("persistent %s took %v round trips through a Slipstream beside the origin, want under 0.9", mode, trips)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "r.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil || !strings.Contains(string(svg), "× faster") {
		t.Errorf("chart is not an SVG with speedups (%v):\n%.300s", err, svg)
	}
}

func TestBenchLatencyTopologyLocalRunsEdgeAndPoolWithAPlainLoopbackClient(t *testing.T) {
	// Not parallel: the environment variable makes the children run as slipstream.
	t.Setenv(runMainEnv, "1")
	ctx := testContext(t, 90*time.Second)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code := cli.Run(ctx, []string{"bench", "latency", "--topology", "local", "--rtt", "40ms", "--origin", directURL(),
		"--queries", "3"}, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	out := stdout.String() + stderr.String()
	if strings.Contains(out, pgtest.AppPassword) {
		t.Errorf("the output shows the password:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "shape=edge+pool") || strings.Contains(stderr.String(), "falling back") {
		t.Errorf("the topology did not run edge and pool:\n%s", stderr.String())
	}
	// The application reaches the edge as a sidecar: plain TCP on loopback.
	if !regexp.MustCompile(`via="?postgres://app:\S*@127\.0\.0\.1:\d+/app\?sslmode=disable`).MatchString(stderr.String()) {
		t.Errorf("the via URL is not plain TCP on loopback:\n%s", stderr.String())
	}
	// A cached query on a new connection costs well under one RTT, an uncached one about one,
	// a direct one at least five. The bounds are loose: under -race on a loaded 2-core machine
	// a local connection setup alone has taken 20 ms (half an RTT here).
	trips := newConnectionTrips(stdout.String(), "postgres")
	if len(trips) != 3 || trips["direct"] < 4.9 || trips["uncached"] >= 3 || trips["cached"] >= 1 {
		t.Errorf("new-connection round trips %v, want direct at least 5, uncached under 3 and cached under 1:\n%s",
			trips, stdout.String())
	}
}

func TestBenchLatencyTopologyLocalSpeaksMySQL(t *testing.T) {
	// Not parallel: the environment variable makes the children run as slipstream.
	t.Setenv(runMainEnv, "1")
	m := mariadb(t)
	ctx := testContext(t, 120*time.Second)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code := cli.Run(ctx, []string{"bench", "latency", "--topology", "local", "--rtt", "40ms",
		"--origin", m.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB), "--queries", "3"}, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	if strings.Contains(stdout.String()+stderr.String(), mytest.AppPassword) {
		t.Error("the output shows the password")
	}
	if !strings.Contains(stderr.String(), "shape=edge+pool") || strings.Contains(stderr.String(), "falling back") {
		t.Errorf("the topology did not run edge and pool:\n%s", stderr.String())
	}
	// The via URL is the mysql:// line Slipstream printed, in plain TCP.
	if !regexp.MustCompile(`via="?mysql://app:\S*@127\.0\.0\.1:\d+/app\?tls=false`).MatchString(stderr.String()) {
		t.Errorf("the via URL is not Slipstream's mysql:// listener in plain TCP:\n%s", stderr.String())
	}
	// Direct: TCP handshake, the greeting, authentication, the query.
	trips := newConnectionTrips(stdout.String(), "mysql")
	if len(trips) != 3 || trips["direct"] < 3.9 || trips["uncached"] >= 3 || trips["cached"] >= 1 {
		t.Errorf("new-connection round trips %v, want direct at least 4, uncached under 3 and cached under 1:\n%s", trips, stdout.String())
	}
}

// newConnectionTrips reads the WAN round trips of the new-connection rows of protocol from
// the table bench latency printed, by mode.
func newConnectionTrips(table, protocol string) map[string]float64 {
	row := regexp.MustCompile(`(?m)^\s*` + protocol + `\s+new-connection\s+(\w+)\s+\S+\s+\S+\s+\S+\s+(\S+)`)
	trips := map[string]float64{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		trips[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	return trips
}

// TestBenchRelayCommandAddsTheRTT also stops the relay with SIGTERM, as main delivers it.
func TestBenchRelayCommandAddsTheRTT(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	sigs := make(chan os.Signal, 1) // as main hands them to every command
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(cli.WithSignals(ctx, sigs), []string{"bench", "relay", "--to", ln.Addr().String(), "--rtt", "30ms"}, stdout, stderr)
	}()
	addrLine := regexp.MustCompile(`relay tcp (\S+) ->`)
	var addr string
	for addr == "" {
		changed := stdout.Changed()
		if m := addrLine.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case <-changed:
		case c := <-done:
			t.Fatalf("relay exited %d; stderr:\n%s", c, stderr.String())
		case <-ctx.Done():
			t.Fatal("relay printed no address")
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	for range 2 { // the first round trip includes the handshake's
		start := time.Now()
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("round trip through the relay took %v, want at least 30ms", d)
		}
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("relay exited %d after SIGTERM; stderr:\n%s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("the relay did not stop on SIGTERM")
	}
}

func TestBenchThroughputRunsEveryTargetWithPeers(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"/usr/sbin/pgbouncer", "/usr/sbin/pgpool"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s is not installed (./scripts/test.sh installs it)", bin)
		}
	}
	ctx := testContext(t, 60*time.Second)
	in := startServe(t)
	path := filepath.Join(t.TempDir(), "t.json")
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	code := cli.Run(ctx, []string{"bench", "throughput", "--direct", directURL(), "--via", in.plainURL(),
		"--compare", "pgbouncer,pgpool", "--clients", "3", "--duration", "500ms", "--read-ratio", "0.8",
		"--hot-set", "50", "--idle-clients", "20", "--syscall-duration", "300ms", "--json", path}, stdout, stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), pgtest.AppPassword) {
		t.Error("the output shows the password")
	}
	t.Logf("stdout:\n%s", stdout)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc bench.ThroughputReport
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range doc.Results {
		names = append(names, r.Target)
		// VsDirect is rounded to two decimals: a peer slowed to a crawl (pgpool-II forking its
		// children on a loaded machine) may show 0.00 with ops made.
		if r.Ops == 0 || r.Errors != 0 || r.OpsPerSec <= 0 || r.VsDirect < 0 {
			t.Errorf("%s: %d ops, %d errors, %v ops/s, %vx direct; want ops and no errors", r.Target, r.Ops, r.Errors, r.OpsPerSec, r.VsDirect)
		}
		// The peers are processes of their own: their costs are measured. Slipstream runs
		// inside this test, with the load generator: its costs are n/a, and a note says why.
		switch r.Target {
		case "pgbouncer", "pgpool":
			if r.CPUUsPerOp == nil || *r.CPUUsPerOp < 0 {
				t.Errorf("%s: CPU per op %v, want measured; notes %q", r.Target, r.CPUUsPerOp, r.Notes)
			}
			if hasStrace() && (r.SyscallsPerOp == nil || *r.SyscallsPerOp <= 0 || len(r.TopSyscalls) == 0) {
				t.Errorf("%s: syscalls per op %v (%v), want counted by strace; notes %q", r.Target, r.SyscallsPerOp, r.TopSyscalls, r.Notes)
			}
			if r.Target == "pgbouncer" && (r.IdleKiBPerClient == nil || r.IdleClients != 20) {
				t.Errorf("pgbouncer: idle memory %v over %d clients, want measured over 20; notes %q", r.IdleKiBPerClient, r.IdleClients, r.Notes)
			}
		case "slipstream":
			if r.CPUUsPerOp != nil || len(r.Notes) == 0 {
				t.Errorf("slipstream in the test's process: CPU per op %v, notes %q; want n/a and a note", r.CPUUsPerOp, r.Notes)
			}
		}
	}
	if !strings.Contains(stdout.String(), "CPU us/op") || (hasStrace() && !strings.Contains(stdout.String(), "pgbouncer syscalls per op")) {
		t.Errorf("the table lacks the cost columns or the syscall breakdown:\n%s", stdout)
	}
	if got := strings.Join(names, ","); got != "direct,slipstream,pgbouncer,pgpool" {
		t.Errorf("targets %s, want direct,slipstream,pgbouncer,pgpool", got)
	}
}

func hasStrace() bool {
	_, err := exec.LookPath("strace")
	return err == nil
}

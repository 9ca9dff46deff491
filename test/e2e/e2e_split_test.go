package e2e

// The split deployment: `slipstream certs`, then `slipstream pool` and `slipstream edge` run
// in-process, each as main runs it, with the QUIC tunnel between them on loopback UDP.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

var tunnelLine = regexp.MustCompile(`(?m)^tunnel: (?:udp|pools dial in to udp) (\S+)$`)

// node is one running `slipstream edge` or `slipstream pool`.
type node struct {
	stdout string      // what it printed up to its metrics line
	out    *syncBuffer // all it printed so far
	stderr *syncBuffer
	stop   func() int
}

// startNode runs `slipstream ARGS...` until the test ends and waits for its metrics line.
func startNode(t testing.TB, args ...string) *node {
	t.Helper()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, args, stdout, stderr) }()
	n := &node{out: stdout, stderr: stderr}
	var once sync.Once
	code := -1
	n.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("slipstream %s did not stop within 15s; stderr:\n%s", args[0], stderr.String())
			}
		})
		return code
	}
	t.Cleanup(func() {
		if c := n.stop(); c != 0 {
			t.Errorf("slipstream %s exited %d after its context ended; stderr:\n%s", args[0], c, stderr.String())
		}
	})
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		changed := stdout.Changed()
		if out := stdout.String(); metricsLine.MatchString(out) {
			n.stdout = out
			return n
		}
		select {
		case <-changed:
		case exit := <-done:
			once.Do(func() { cancel(); code = 0 })
			t.Fatalf("slipstream %s exited %d before serving; stdout:\n%s\nstderr:\n%s",
				strings.Join(args, " "), exit, stdout.String(), stderr.String())
		case <-deadline.C:
			t.Fatalf("slipstream %s printed no addresses within 15s; stderr:\n%s", args[0], stderr.String())
		}
	}
}

// tunnelAddr is the UDP address the node printed for its tunnel.
func (n *node) tunnelAddr(t testing.TB) string {
	m := tunnelLine.FindStringSubmatch(n.stdout)
	if m == nil {
		t.Fatalf("no tunnel address in:\n%s", n.stdout)
	}
	return m[1]
}

// appURL is the URL the edge printed for the app database, without TLS.
func (n *node) appURL(t *testing.T) string {
	for _, m := range databaseLine.FindAllStringSubmatch(n.stdout, -1) {
		if m[1] == pgtest.AppDB {
			return withQuery(m[2], "sslmode", "disable")
		}
	}
	t.Fatalf("no line for database %s in:\n%s", pgtest.AppDB, n.stdout)
	return ""
}

// makeCerts runs `slipstream certs` into a temporary directory and returns it.
func makeCerts(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	var out, errOut strings.Builder
	if code := cli.Run(context.Background(), []string{"certs", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("slipstream certs exited %d: %s", code, errOut.String())
	}
	return dir
}

func TestCertsWritesACAAndNodeCertificatesAndNeverOverwrites(t *testing.T) {
	dir := makeCerts(t)
	for _, f := range []string{"ca.key", "edge.key", "pool.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, "edge.crt"))
	os.Remove(filepath.Join(dir, "pool.crt"))
	os.Remove(filepath.Join(dir, "pool.key"))
	var out, errOut strings.Builder
	if code := cli.Run(context.Background(), []string{"certs", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("second run exited %d: %s", code, errOut.String())
	}
	if got := out.String(); strings.Contains(got, "ca.crt") || strings.Contains(got, "edge.crt") || !strings.Contains(got, "pool.crt") {
		t.Errorf("second run wrote:\n%s\nwant only the missing pool certificate", got)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "edge.crt")); string(after) != string(before) {
		t.Error("the edge certificate was overwritten")
	}
}

func TestPgxQueriesThroughASeparateEdgeAndPool(t *testing.T) {
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", directURL())
	edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	querySplit(t, edge.appURL(t))
}

// querySplit runs a query and a transaction through the edge at url.
func querySplit(t *testing.T, url string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	conn := connect(t, ctx, url)
	var n int
	if err := conn.QueryRow(ctx, "SELECT $1::int * 2", 21).Scan(&n); err != nil || n != 42 {
		t.Fatalf("query through the edge: %d, %v; want 42", n, err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 10)").Scan(&n); err != nil || n != 10 {
		t.Fatalf("query in a transaction: %d, %v", n, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPgxQueriesThroughAPoolThatDialsTheEdge(t *testing.T) {
	dir := makeCerts(t)
	edge := startNode(t, "edge", "--tunnel-listen", "127.0.0.1:0", "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	startNode(t, "pool", "--dial-edge", edge.tunnelAddr(t), "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--origin", directURL())
	querySplit(t, edge.appURL(t))
}

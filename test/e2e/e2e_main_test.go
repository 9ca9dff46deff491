package e2e

// End-to-end tests: `slipstream serve` runs in-process (run, exactly as main calls it) in front
// of a real PostgreSQL 15 and a real MariaDB 10.11, each started once for the package, and real
// drivers and tools talk to it: pgx, lib/pq, psql, pgbench and node-postgres; go-sql-driver/mysql,
// the mariadb CLI and mysql2 (e2e_mysql_test.go). Where it helps, the same thing is done directly
// against the database and the answers are compared.
//
// Every test starts its own serve instance (listening on 127.0.0.1:0, cheap in-process), so
// the per-database settings a test needs (max_connections, queue_timeout, auth_method) never
// affect another test, and tests can run in parallel. Tables, schemas, channels and lock keys
// carry a per-test unique suffix for the same reason.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// srv is the PostgreSQL 15 every test of the package uses as its origin.
var srv *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" { // started by bench's topology as the slipstream binary
		sigs, stop := cli.ProcessSignals()
		code := runAsChild(cli.WithSignals(context.Background(), sigs), os.Args[1:])
		stop()
		os.Exit(code)
	}
	// Most of these tests wait on the network, not on the CPU; with go test's default of
	// GOMAXPROCS parallel tests a 2-core machine would run them nearly one at a time.
	flag.Parse()
	if !flagGiven("test.parallel") {
		flag.Set("test.parallel", "6")
	}
	// MariaDB starts while PostgreSQL does; the MySQL tests wait for it (mariaDB).
	stopMariaDB := startMariaDB()
	code := pgtest.Main(m, &srv)
	if err := stopMariaDB(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	if code == 0 {
		// Every serve instance has stopped by now (each test's cleanup waits for run to
		// return), so nothing of the proxy may still run.
		if err := proxyGoroutinesGone(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// proxyGoroutinesGone waits up to d for every goroutine running the product's code (edge,
// pool, tunnel, wire codecs) to end, and otherwise returns their stacks.
func proxyGoroutinesGone(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return eventually(ctx, func() error {
		if stacks := productStacks(); stacks != "" {
			return fmt.Errorf("goroutines of slipstream outlived every serve instance:\n\n%s", stacks)
		}
		return nil
	})
}

// productStacks returns the stacks of the goroutines running the edge, the pool, the tunnel
// or the wire codecs.
func productStacks() string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, pkg := range []string{"/proxy.", "/pool.", "/pool/mysql.", "/tunnel.", "/protocol/pgwire.", "/protocol/mysqlwire."} {
			if strings.Contains(g, "github.com/slipstream-proxy/slipstream"+pkg) {
				found = append(found, g)
				break
			}
		}
	}
	return strings.Join(found, "\n\n")
}

// instance is one running `slipstream serve`.
type instance struct {
	PGURL   string // the printed connection string of database app, without sslmode
	HTTP    string // host:port of /metrics and /healthz
	DataDir string

	stdout *syncBuffer // what serve printed: the connection strings
	stderr *syncBuffer
	stop   func() int // cancels serve and returns its exit code; idempotent
}

// Stop ends serve now, as SIGTERM would, and returns run's exit code.
func (in *instance) Stop() int { return in.stop() }

// startServe runs `slipstream serve --origin APP_URL` with loopback listeners on free ports and
// a temporary data directory, plus extraArgs. It stops when the test ends: the cleanup cancels
// the context and requires run to return 0 in time.
func startServe(t *testing.T, extraArgs ...string) *instance {
	t.Helper()
	return runServe(t, append([]string{"--origin", srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)}, extraArgs...))
}

// writeTOML writes a config file, readable by its owner only, and returns its path.
func writeTOML(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slipstream.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServeTOML runs serve with a --config file holding one [[database]] table for the app
// database, with the given extra TOML lines (such as `max_connections = 2`). originQuery, if
// not empty, is added to the origin URL's query (such as application_name=...).
func startServeTOML(t *testing.T, originQuery string, lines ...string) *instance {
	t.Helper()
	origin := srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)
	if originQuery != "" {
		origin += "&" + originQuery
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[[database]]\nname = %q\norigin = %q\n", pgtest.AppDB, origin)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	path := writeTOML(t, b.String())
	return runServe(t, []string{"--config", path})
}

var (
	databaseLine = regexp.MustCompile(`(?m)^database (\S+): (\S+)$`)
	metricsLine  = regexp.MustCompile(`(?m)^metrics: http://(\S+)/metrics$`)
)

func runServe(t *testing.T, args []string) *instance {
	t.Helper()
	return runServeFor(t, pgtest.AppDB, args)
}

// runServeFor is runServe for a database other than app: PGURL is the line printed for db.
// A --data-dir in args overrides the temporary one.
func runServeFor(t testing.TB, db string, args []string) *instance {
	t.Helper()
	dataDir := t.TempDir()
	args = append([]string{"serve", "--pg-listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, args, stdout, stderr) }()

	inst := &instance{DataDir: dataDir, stdout: stdout, stderr: stderr}
	var once sync.Once
	code := -1
	inst.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("slipstream serve did not stop within 15s of its context ending; stderr:\n%s", stderr.String())
			}
		})
		return code
	}
	t.Cleanup(func() {
		if c := inst.Stop(); c != 0 {
			t.Errorf("slipstream serve exited %d after its context ended; stderr:\n%s", c, stderr.String())
		}
	})

	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		changed := stdout.Changed()
		out := stdout.String()
		if m := metricsLine.FindStringSubmatch(out); m != nil {
			for _, d := range databaseLine.FindAllStringSubmatch(out, -1) {
				if d[1] == db {
					inst.PGURL = d[2]
				}
			}
			if inst.PGURL == "" {
				t.Fatalf("serve printed no line for database %s:\n%s", db, out)
			}
			inst.HTTP = m[1]
			return inst
		}
		select {
		case <-changed:
		case exit := <-done:
			once.Do(func() { cancel(); code = 0 }) // reported here; nothing left to stop
			t.Fatalf("slipstream serve %s exited %d before serving; stdout:\n%s\nstderr:\n%s",
				strings.Join(args, " "), exit, stdout.String(), stderr.String())
		case <-deadline.C:
			t.Fatalf("slipstream serve printed no addresses within 15s; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}
}

// URL returns the instance's app URL with the query parameters added (k1, v1, k2, v2...).
func (in *instance) URL(kv ...string) string {
	return withQuery(in.PGURL, kv...)
}

// withQuery adds query parameters to a connection URL.
func withQuery(raw string, kv ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// pgAddr returns the host:port clients connect to.
func pgAddr(t testing.TB, in *instance) string {
	u, err := url.Parse(in.PGURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// plainURL is the app URL without TLS, for tests that are not about TLS.
func (in *instance) plainURL() string { return in.URL("sslmode", "disable") }

// directURL is the app database on PostgreSQL itself, for comparisons.
func directURL() string { return srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB) }

// connect opens a pgx connection to url, closed when the test ends.
func connect(t testing.TB, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return connectConfig(t, ctx, cfg)
}

func connectConfig(t testing.TB, ctx context.Context, cfg *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", cfg.ConnString(), err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	})
	return conn
}

// testContext bounds a test: it ends after d, or 5s before the go test deadline if sooner.
func testContext(t *testing.T, d time.Duration) context.Context {
	// The durations are for hangs, not timings. A test's parallel subtests wait their turn
	// (go test runs GOMAXPROCS of them at once, 2 here) after the context is made, and the suite
	// has grown: four times d, within the test binary's own deadline.
	deadline := time.Now().Add(4 * d)
	if dl, ok := t.Deadline(); ok && dl.Add(-5*time.Second).Before(deadline) {
		deadline = dl.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// suffix returns a short random identifier for names private to one test.
func suffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sqlstate returns the SQLSTATE of a PostgreSQL error, or "" when err is not one.
func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// metrics fetches the instance's /metrics text.
func (in *instance) metrics(t testing.TB) string {
	t.Helper()
	body, code := httpGet(t, "http://"+in.HTTP+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", code)
	}
	return body
}

// metricValue returns the value of the sample named name{labels} ("" matches no labels),
// summing the samples whose labels contain every given label pair. ok is false when there is
// no such sample.
func metricValue(text, name string, labels ...string) (v float64, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbl string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			lbl, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // a longer name with this prefix
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(","+lbl+",", ","+l+",") {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		v += f
		ok = true
	}
	return v, ok
}

func httpGet(t testing.TB, u string) (string, int) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return string(b), resp.StatusCode
}

// syncBuffer is an io.Writer safe for concurrent use that tells readers when it grows.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Changed returns a channel closed at the next Write.
func (b *syncBuffer) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// eventually retries check every 20ms until it returns nil or ctx ends, and returns the last
// error. It is for state that changes asynchronously (a lock freed when a connection closes).
func eventually(ctx context.Context, check func() error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

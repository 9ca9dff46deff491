package e2e

// The lifecycle end to end: slipstream runs as its own process (the test binary started as
// the slipstream binary, runMainEnv) and is driven by real signals, with a NOTIFY_SOCKET the
// test reads as systemd would, in front of the real PostgreSQL, with pgbench as the load.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mysqlerr "github.com/go-mysql-org/go-mysql/mysql"

	tlscerts "github.com/slipstream-proxy/slipstream/certs"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// child is a slipstream process started from the test binary, and the processes a handover
// (SIGUSR2) starts from it, which write to the same output.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	PGURL, HTTP    string
	exited         chan struct{}
	err            error         // cmd.Wait's, once exited is closed
	outputDone     chan struct{} // closed when every process writing the output has exited
	notes          *notifications
}

// successorPID matches the line of a handover that names the new process.
var successorPID = regexp.MustCompile(`handover: the new process serves.* pid=(\d+)`)

// successors returns the process ids of the processes handovers have started.
func (c *child) successors() []int {
	var pids []int
	for _, m := range successorPID.FindAllStringSubmatch(c.stderr.String(), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

// startChild runs `slipstream ARGS...` as a process with its own NOTIFY_SOCKET, and waits
// until it prints the URL of database db and the metrics address. The cleanup kills it if
// the test has not ended it.
func startChild(t *testing.T, db string, args ...string) *child {
	t.Helper()
	notes := listenNotify(t)
	c := &child{stdout: newSyncBuffer(), stderr: newSyncBuffer(), exited: make(chan struct{}),
		outputDone: make(chan struct{}), notes: notes}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), runMainEnv+"=1", "NOTIFY_SOCKET="+notes.path)
	// Pipes of our own rather than exec's copying: a process a handover starts inherits them,
	// and cmd.Wait would wait for it too.
	var copies sync.WaitGroup
	for _, out := range []struct {
		set *io.Writer
		to  *syncBuffer
	}{{&c.cmd.Stdout, c.stdout}, {&c.cmd.Stderr, c.stderr}} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		*out.set = w
		defer w.Close()
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(out.to, r)
			r.Close()
		}()
	}
	go func() {
		copies.Wait()
		close(c.outputDone)
	}()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
		for _, pid := range c.successors() { // ours, started by the handovers of this test
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-c.outputDone
		if t.Failed() {
			t.Logf("slipstream %s stderr:\n%s", strings.Join(args, " "), c.stderr.String())
		}
	})
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		changed := c.stdout.Changed()
		out := c.stdout.String()
		if m := metricsLine.FindStringSubmatch(out); m != nil {
			for _, d := range databaseLine.FindAllStringSubmatch(out, -1) {
				if d[1] == db {
					c.PGURL = d[2]
				}
			}
			c.HTTP = m[1]
			if c.PGURL == "" {
				t.Fatalf("no line for database %s:\n%s", db, out)
			}
			c.notes.wait(t, "READY=1")
			return c
		}
		select {
		case <-changed:
		case <-c.exited:
			t.Fatalf("slipstream exited before serving: %v\n%s", c.err, c.stderr.String())
		case <-deadline.C:
			t.Fatalf("slipstream printed no addresses within 30s:\n%s", c.stderr.String())
		}
	}
}

// logSays waits until the process's log has each of the texts (its stderr is copied from a
// pipe, so a line may land after a notification sent later).
func (c *child) logSays(t *testing.T, ctx context.Context, texts ...string) {
	t.Helper()
	if err := eventually(ctx, func() error {
		for _, want := range texts {
			if !strings.Contains(c.stderr.String(), want) {
				return fmt.Errorf("the log does not say %q", want)
			}
		}
		return nil
	}); err != nil {
		t.Errorf("%v:\n%s", err, c.stderr.String())
	}
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the process to exit and fails the test unless it exits 0 within d.
func (c *child) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-c.exited:
		if c.err != nil {
			t.Errorf("slipstream exited with %v, want 0; stderr:\n%s", c.err, c.stderr.String())
		}
	case <-time.After(d):
		t.Fatalf("slipstream did not exit within %v; stderr:\n%s", d, c.stderr.String())
	}
}

// notifications are the sd_notify messages a child sent, as systemd receives them.
type notifications struct {
	path string
	mu   sync.Mutex
	got  []string
	more chan struct{} // closed and replaced at each message
}

func listenNotify(t *testing.T) *notifications {
	t.Helper()
	n := &notifications{path: filepath.Join(t.TempDir(), "notify.sock"), more: make(chan struct{})}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.got = append(n.got, string(buf[:k]))
			close(n.more)
			n.more = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	return n
}

// wait waits for a message starting with prefix after the ones already waited for, and
// returns it.
func (n *notifications) wait(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		n.mu.Lock()
		for i, m := range n.got {
			if strings.HasPrefix(m, prefix) {
				n.got = n.got[i+1:]
				n.mu.Unlock()
				return m
			}
		}
		more := n.more
		n.mu.Unlock()
		select {
		case <-more:
		case <-timeout:
			t.Fatalf("no %s from sd_notify within 30s", prefix)
		}
	}
}

// httpStatus is the status of GET http://addr/path, or 0 when nothing answers.
func httpStatus(addr, path string) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path)
	line, _ := bufio.NewReader(c).ReadString('\n')
	var code int
	fmt.Sscanf(line, "HTTP/1.0 %d", &code)
	if code == 0 {
		fmt.Sscanf(line, "HTTP/1.1 %d", &code)
	}
	return code
}

// lifecycleTOML writes a configuration serving the app database (and the extra lines), with
// loopback listeners on the given addresses.
func lifecycleTOML(t *testing.T, path, pg, my, httpAddr string, extra ...string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "slipstream.toml")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pg_listen = %q\nmysql_listen = %q\nhttp_listen = %q\n", pg, my, httpAddr)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as a config manager replaces a file
		t.Fatal(err)
	}
	return path
}

func appDatabase(name string, lines ...string) string {
	return fmt.Sprintf("[[database]]\nname = %q\norigin = %q\n%s", name, srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB),
		strings.Join(lines, "\n"))
}

// TestSIGTERMDrainsSessionsAtTheirNextRequestBoundary: after SIGTERM a session inside a
// transaction finishes it, an idle one is closed with 57P01, and so are pinned ones (LISTEN,
// an advisory lock) at their boundary, long before shutdown_timeout; new clients are refused,
// /readyz turns 503, systemd hears STOPPING=1, and the process exits 0 once the last
// session has ended.
func TestSIGTERMDrainsSessionsAtTheirNextRequestBoundary(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	table := "drain_" + suffix()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, "create table "+table+" (n int)"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", `shutdown_timeout = "60s"`, appDatabase(pgtest.AppDB))
	c := startChild(t, pgtest.AppDB, "serve", "--config", cfg, "--data-dir", dir)
	plain := withQuery(c.PGURL, "sslmode", "disable")
	if code := httpStatus(c.HTTP, "/readyz"); code != 200 {
		t.Fatalf("/readyz before SIGTERM: %d, want 200", code)
	}
	if code := httpStatus(c.HTTP, "/startup"); code != 200 {
		t.Fatalf("/startup: %d, want 200", code)
	}

	idle := connect(t, ctx, plain)
	if _, err := idle.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	inTx := connect(t, ctx, plain)
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into "+table+" values (1)"); err != nil {
		t.Fatal(err)
	}
	listener := connect(t, ctx, plain)
	if _, err := listener.Exec(ctx, "listen drain_"+table); err != nil {
		t.Fatal(err)
	}
	locker := connect(t, ctx, plain) // pinned by its session-level lock, then in a transaction
	if _, err := locker.Exec(ctx, "select pg_advisory_lock(hashtext($1))", table); err != nil {
		t.Fatal(err)
	}
	lockTx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockTx.Exec(ctx, "insert into "+table+" values (3)"); err != nil {
		t.Fatal(err)
	}

	c.signal(t, syscall.SIGTERM)
	c.notes.wait(t, "STOPPING=1")
	if err := eventually(ctx, func() error {
		if code := httpStatus(c.HTTP, "/readyz"); code != 503 {
			return fmt.Errorf("/readyz while draining: %d, want 503", code)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := eventually(ctx, func() error {
		_, err := net.DialTimeout("tcp", pgAddrOf(t, c.PGURL), time.Second)
		if err == nil {
			return errors.New("a new client was accepted while draining")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The transaction is not cut: it goes on and commits.
	if _, err := tx.Exec(ctx, "insert into "+table+" values (2)"); err != nil {
		t.Fatalf("a statement in the open transaction, while draining: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("COMMIT while draining: %v", err)
	}
	if _, err := inTx.Exec(ctx, "select 1"); sqlstate(err) != "57P01" && (err == nil || pgconnSafe(err)) {
		t.Errorf("the next query after the commit: %v, want 57P01 admin_shutdown or a closed connection", err)
	}
	if _, err := lockTx.Exec(ctx, "insert into "+table+" values (4)"); err != nil {
		t.Fatalf("a pinned session's transaction, while draining: %v", err)
	}
	if err := lockTx.Commit(ctx); err != nil {
		t.Fatalf("a pinned session's COMMIT while draining: %v", err)
	}
	if _, err := locker.Exec(ctx, "select 1"); sqlstate(err) != "57P01" && (err == nil || pgconnSafe(err)) {
		t.Errorf("a pinned session's next query after its commit: %v, want 57P01 admin_shutdown or a closed connection", err)
	}
	// The idle session sends nothing: the process ends it by itself (once it has been idle
	// for a second, in case a request was on its way) and exits.
	c.wait(t, 20*time.Second)
	if _, err := idle.Exec(ctx, "select 1"); sqlstate(err) != "57P01" && (err == nil || pgconnSafe(err)) {
		t.Errorf("the idle session's next query: %v, want 57P01 admin_shutdown or a closed connection", err)
	}
	// The LISTEN session waited for notifications: it was told 57P01 as it ended.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = listener.WaitForNotification(wctx)
	cancel()
	if sqlstate(err) != "57P01" && (err == nil || pgconnSafe(err) || errors.Is(err, context.DeadlineExceeded)) {
		t.Errorf("the LISTEN session: %v, want 57P01 admin_shutdown or a closed connection", err)
	}
	var n int
	if err := direct.QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil || n != 4 {
		t.Errorf("rows committed: %d (%v), want the four of both transactions", n, err)
	}
	if !strings.Contains(c.stderr.String(), "drained: every session has ended") {
		t.Errorf("the log does not say the drain completed:\n%s", c.stderr.String())
	}
}

// pgconnSafe reports whether err is an answer from a live server (not a closed connection).
func pgconnSafe(err error) bool { return sqlstate(err) != "" }

func pgAddrOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// lifecycleScript writes a pgbench script of one read-write transaction on table, whose rows
// 1..100 it creates directly.
func lifecycleScript(t *testing.T, ctx context.Context, table string) string {
	t.Helper()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, "create table "+table+" (id int primary key, n int not null default 0); insert into "+table+" select g, 0 from generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tx.sql")
	script := "\\set id random(1, 100)\nBEGIN;\nUPDATE " + table + " SET n = n + 1 WHERE id = :id;\nSELECT n FROM " + table + " WHERE id = :id;\nEND;\n"
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pgbenchRun is a pgbench run in the background.
type pgbenchRun struct {
	out  []byte
	err  error
	done chan struct{}
}

// startPgbench runs pgbench with the script against rawURL for the given seconds.
func startPgbench(t *testing.T, ctx context.Context, rawURL, script string, args ...string) *pgbenchRun {
	t.Helper()
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench: %v (./scripts/test.sh installs postgresql-15)", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"-n", "-f", script, "-h", u.Hostname(), "-p", u.Port(), "-U", pgtest.AppUser}, args...)
	args = append(args, strings.TrimPrefix(u.Path, "/"))
	cmd := exec.CommandContext(ctx, pgbench, args...)
	sslmode := u.Query().Get("sslmode")
	if sslmode == "" {
		sslmode = "disable"
	}
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pgtest.AppPassword, "PGSSLMODE="+sslmode, "PGCONNECT_TIMEOUT=10", "PGAPPNAME=")
	r := &pgbenchRun{done: make(chan struct{})}
	go func() {
		r.out, r.err = cmd.CombinedOutput()
		close(r.done)
	}()
	return r
}

var (
	pgbenchFailed = regexp.MustCompile(`number of failed transactions: (\d+)`)
	pgbenchTPS    = regexp.MustCompile(`tps = ([0-9.]+)`)
	pgbenchDone   = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
)

// wait waits for the run and returns its summary; it fails the test unless pgbench exited 0
// with no failed transaction (when clean is set).
func (r *pgbenchRun) wait(t *testing.T, name string, clean bool) string {
	t.Helper()
	<-r.done
	out := string(r.out)
	summary := name + ":"
	for _, re := range []*regexp.Regexp{pgbenchDone, pgbenchFailed, pgbenchTPS} {
		if m := re.FindStringSubmatch(out); m != nil {
			summary += " " + m[0] + ";"
		}
	}
	if aborted := strings.Count(out, "aborted in command"); aborted > 0 {
		summary += fmt.Sprintf(" clients aborted: %d;", aborted)
	}
	if clean {
		if r.err != nil {
			t.Errorf("%s: pgbench %v\n%s", name, r.err, out)
		} else if m := pgbenchFailed.FindStringSubmatch(out); m != nil && m[1] != "0" {
			t.Errorf("%s: %s failed transactions\n%s", name, m[1], out)
		}
	}
	return summary
}

// TestSIGHUPReloadsUnderLoad: under pgbench, a SIGHUP adds a database, resizes the pool and
// rotates the TLS certificate with no client error; a file that does not validate then keeps
// the running configuration.
func TestSIGHUPReloadsUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	dir := t.TempDir()
	certA, keyA, pemA := newCertFiles(t, filepath.Join(dir, "a"))
	certB, keyB, pemB := newCertFiles(t, filepath.Join(dir, "b"))
	// The same paths for both certificates, as a rotation replaces the files.
	live := filepath.Join(dir, "live")
	os.MkdirAll(live, 0o700)
	install := func(cert, key string) {
		for src, dst := range map[string]string{cert: "server.crt", key: "server.key"} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(live, dst+".new"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Rename(filepath.Join(live, dst+".new"), filepath.Join(live, dst))
		}
	}
	install(certA, keyA)
	tlsLines := fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n", filepath.Join(live, "server.crt"), filepath.Join(live, "server.key"))
	cfg := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", tlsLines, appDatabase(pgtest.AppDB, "max_connections = 2"))
	c := startChild(t, pgtest.AppDB, "serve", "--config", cfg, "--data-dir", dir)
	if got := presentedCert(t, c.PGURL); got != pemA {
		t.Fatal("the listener does not present the configured certificate")
	}
	table := "reload_" + suffix()
	script := lifecycleScript(t, ctx, table)
	plain := startPgbench(t, ctx, withQuery(c.PGURL, "sslmode", "disable"), script, "-c", "8", "-j", "4", "-T", "8")
	encrypted := startPgbench(t, ctx, withQuery(c.PGURL, "sslmode", "require"), script, "-c", "4", "-j", "2", "-T", "8", "-C")

	// The listeners' addresses stay; the file changes what can change.
	pg, http := pgAddrOf(t, c.PGURL), c.HTTP
	waitForLoad(t, ctx, table, 20)
	install(certB, keyB)
	lifecycleTOML(t, cfg, pg, "127.0.0.1:0", http, tlsLines,
		appDatabase(pgtest.AppDB, "max_connections = 5"), appDatabase("app2", "max_connections = 1"))
	c.signal(t, syscall.SIGHUP)
	if m := c.notes.wait(t, "RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	c.notes.wait(t, "READY=1")
	c.logSays(t, ctx, "configuration reloaded", "reload: database opened", "db=app2", "reload: pool resized", "max_connections=5")
	if got := presentedCert(t, c.PGURL); got != pemB {
		t.Error("after the reload the listener still presents the old certificate")
	}
	app2 := strings.Replace(withQuery(c.PGURL, "sslmode", "disable"), "/"+pgtest.AppDB+"?", "/app2?", 1)
	conn := connect(t, ctx, app2)
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("the added database: %v", err)
	}

	t.Logf("%s", plain.wait(t, "pgbench -c 8 -T 8 through a SIGHUP", true))
	t.Logf("%s", encrypted.wait(t, "pgbench -C sslmode=require -c 4 -T 8 through a SIGHUP", true))

	c.refusesBadReload(t, ctx, cfg)
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Errorf("after a refused reload, app2: %v", err)
	}
	c.signal(t, syscall.SIGTERM)
	c.wait(t, 20*time.Second)
}

// refusesBadReload writes a configuration that does not validate to path and SIGHUPs the
// process, which must keep its running configuration and say why.
func (c *child) refusesBadReload(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	os.WriteFile(path, []byte("[[database]]\nname = \"x\"\nkind = \"nope\"\n"), 0o600)
	c.signal(t, syscall.SIGHUP)
	c.notes.wait(t, "RELOADING=1")
	c.notes.wait(t, "READY=1")
	c.logSays(t, ctx, "reload failed; the running configuration stays")
}

// upgradeLoad is the clients and seconds of an upgrade test's load: a short run by default,
// 16 clients for SLIPSTREAM_UPGRADE_SECONDS when set (the measurement of deploy/README.md).
func upgradeLoad(seconds string) (clients, secs string) {
	if s := os.Getenv("SLIPSTREAM_UPGRADE_SECONDS"); s != "" {
		return "16", s
	}
	return "8", seconds
}

// newCertFiles creates a self-signed certificate in dir and returns its files and PEM.
func newCertFiles(t *testing.T, dir string) (cert, key, certPEM string) {
	t.Helper()
	if _, err := tlscerts.LoadOrCreate("", "", dir); err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	b, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, string(b)
}

// presentedCert does an SSLRequest and a TLS handshake with the PostgreSQL listener of rawURL
// and returns the certificate it presents, in PEM.
func presentedCert(t *testing.T, rawURL string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", pgAddrOf(t, rawURL), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	nc.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47})
	b := make([]byte, 1)
	if _, err := nc.Read(b); err != nil || b[0] != 'S' {
		t.Fatalf("SSLRequest: %q %v", b, err)
	}
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"postgresql"}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	var leaf *x509.Certificate = tc.ConnectionState().PeerCertificates[0]
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
}

// waitForLoad waits until pgbench has committed n transactions on table.
func waitForLoad(t *testing.T, ctx context.Context, table string, n int) {
	t.Helper()
	direct := connect(t, ctx, directURL())
	if err := eventually(ctx, func() error {
		var done int
		if err := direct.QueryRow(ctx, "select sum(n) from "+table).Scan(&done); err != nil {
			return err
		}
		if done < n {
			return fmt.Errorf("%d transactions so far, waiting for %d", done, n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeWithSOReuseportDropsNoTransaction: under pgbench, a second process starts on the
// same addresses and takes the new clients, the first drains and exits 0. pgbench -C (a
// connection per transaction) sees no failed transaction and no refused connection.
// Persistent pgbench clients are reported, not judged: the old process ends them at a
// transaction boundary with 57P01, and pgbench aborts a client whose connection ends.
//
// SLIPSTREAM_UPGRADE_SECONDS=30 makes it the measurement of deploy/README.md (16 clients
// each, 30 s); the default is a short run.
func TestUpgradeWithSOReuseportDropsNoTransaction(t *testing.T) {
	t.Parallel()
	clients, seconds := upgradeLoad("8")
	ctx := testContext(t, 180*time.Second)
	dir := t.TempDir()
	cfgA := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", appDatabase(pgtest.AppDB))
	a := startChild(t, pgtest.AppDB, "serve", "--config", cfgA, "--data-dir", dir)
	table := "upgrade_" + suffix()
	script := lifecycleScript(t, ctx, table)
	plain := withQuery(a.PGURL, "sslmode", "disable")
	perConn := startPgbench(t, ctx, plain, script, "-C", "-c", clients, "-j", "4", "-T", seconds)
	persistent := startPgbench(t, ctx, plain, script, "-c", clients, "-j", "4", "-T", seconds)
	waitForLoad(t, ctx, table, 20)

	cfgB := lifecycleTOML(t, "", pgAddrOf(t, a.PGURL), "127.0.0.1:0", a.HTTP, appDatabase(pgtest.AppDB))
	b := startChild(t, pgtest.AppDB, "serve", "--config", cfgB, "--data-dir", dir)
	if pgAddrOf(t, b.PGURL) != pgAddrOf(t, a.PGURL) {
		t.Fatalf("the new process listens on %s, the old on %s", b.PGURL, a.PGURL)
	}
	a.signal(t, syscall.SIGTERM)
	a.wait(t, 40*time.Second)

	t.Logf("%s", perConn.wait(t, "pgbench -C -c "+clients+" -T "+seconds+" through an SO_REUSEPORT upgrade", true))
	t.Logf("%s", persistent.wait(t, "pgbench -c "+clients+" -T "+seconds+" (persistent) through an SO_REUSEPORT upgrade", false))
	if !strings.Contains(a.stderr.String(), "drained: every session has ended") {
		t.Errorf("the old process did not drain:\n%s", a.stderr.String())
	}
	b.signal(t, syscall.SIGTERM)
	b.wait(t, 40*time.Second)
}

// TestSIGTERMDrainsMySQLSessionsAtTheirNextCommandBoundary is the drain for MySQL clients: a
// transaction in progress commits; then the session, and an idle one, end with
// ER_SERVER_SHUTDOWN (1053), and the process exits 0.
func TestSIGTERMDrainsMySQLSessionsAtTheirNextCommandBoundary(t *testing.T) {
	t.Parallel()
	my := mariaDB(t)
	table := "drain_" + suffix()
	cfg := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", `shutdown_timeout = "60s"`,
		fmt.Sprintf("[[database]]\nname = %q\nkind = \"mysql\"\norigin = %q\n", mytest.AppDB, my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)))
	c := startChild(t, mytest.AppDB, "serve", "--config", cfg, "--data-dir", t.TempDir())
	addr := pgAddrOf(t, c.PGURL)
	inTx, idle := rawMySQL(t, addr), rawMySQL(t, addr)
	for _, q := range []string{"create table " + table + " (n int)", "begin", "insert into " + table + " values (1)"} {
		if _, err := inTx.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := idle.Execute("select 1"); err != nil {
		t.Fatal(err)
	}
	c.signal(t, syscall.SIGTERM)
	c.notes.wait(t, "STOPPING=1")
	// STOPPING=1 comes first; the sessions are told to drain after shutdown_min_delay: a
	// command sent before that is an ordinary one.
	c.logSays(t, context.Background(), "draining: no new clients")
	for _, q := range []string{"insert into " + table + " values (2)", "commit"} {
		if _, err := inTx.Execute(q); err != nil {
			t.Fatalf("%s while draining: %v", q, err)
		}
	}
	shutdown := func(name string, err error) {
		var me *mysqlerr.MyError
		if err == nil || (errors.As(err, &me) && me.Code != mysqlerr.ER_SERVER_SHUTDOWN) {
			t.Errorf("%s: %v, want ER_SERVER_SHUTDOWN or a closed connection", name, err)
		}
	}
	_, err := inTx.Execute("select 1")
	shutdown("the next command after the commit", err)
	c.wait(t, 20*time.Second)
	_, err = idle.Execute("select 1")
	shutdown("the idle session's next command", err)
	direct := openMySQL(t, directMySQLConfig(t))
	var n int
	if err := direct.QueryRow("select count(*) from " + table).Scan(&n); err != nil || n != 2 {
		t.Errorf("rows committed: %d (%v), want both of the transaction's", n, err)
	}
}

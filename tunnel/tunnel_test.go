package tunnel_test

// Integration tests: a pool end and an edge end in this process, over QUIC on loopback UDP,
// in front of a real PostgreSQL 15 started once for the package.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	tlscerts "github.com/slipstream-proxy/slipstream/certs"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/poolend"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

var srv *pgtest.Server

func TestMain(m *testing.M) {
	code := pgtest.Main(m, &srv)
	if code == 0 {
		if err := tunnelGoroutinesGone(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// tunnelGoroutinesGone waits up to d for every goroutine running the tunnel's code to end, and
// otherwise returns their stacks: every test stops what it started.
func tunnelGoroutinesGone(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var found []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "slipstream/tunnel.") && !strings.Contains(g, "tunnelGoroutinesGone") {
				found = append(found, g)
			}
		}
		if len(found) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutines of the tunnel outlived the tests:\n\n%s", strings.Join(found, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// certs creates a deployment's certificates in a temporary directory and returns the TLS
// configurations of its edge and its pool.
func certs(t testing.TB) (edge, pool *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	if _, err := tlscerts.CreateDeployment(dir); err != nil {
		t.Fatal(err)
	}
	edge, err := tunnel.LoadTLS(dir, tlscerts.NodeEdge)
	if err != nil {
		t.Fatal(err)
	}
	pool, err = tunnel.LoadTLS(dir, tlscerts.NodePool)
	if err != nil {
		t.Fatal(err)
	}
	return edge, pool
}

// startPool runs a pool end serving the app database on a free UDP port and returns its
// address and server.
func startPool(t testing.TB, tlsConf *tls.Config, cfg pool.Config) (string, *tunnel.Server) {
	t.Helper()
	return startPoolEnd(t, tlsConf, cfg, tunnel.ServerConfig{})
}

// startPoolEnd is startPool with the pool end's configuration: its origins, TLS and logger are
// filled in.
// The origin is wrapped by a pool end (poolend) of ecfg, if given, or of a zero Config: its
// sessions tell the other edges about their writes.
func startPoolEnd(t testing.TB, tlsConf *tls.Config, cfg pool.Config, scfg tunnel.ServerConfig, ecfg ...poolend.Config) (string, *tunnel.Server) {
	t.Helper()
	cfg.Name = pgtest.AppDB
	cfg.Origin = srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)
	cfg.Logger = quiet
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var end poolend.Config
	if len(ecfg) > 0 {
		end = ecfg[0]
	}
	scfg.Origins = map[string]link.Origin{pgtest.AppDB: poolend.New(end).Origin(pgtest.AppDB, p.Origin())}
	scfg.TLS, scfg.Logger = tlsConf, quiet
	s := tunnel.NewServer(scfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pool end: %v", err)
		}
		pc.Close()
		p.Close()
	})
	return pc.LocalAddr().String(), s
}

// dialPool returns an edge end connected to the pool at addr.
func dialPool(t testing.TB, addr string, tlsConf *tls.Config) *tunnel.Client {
	t.Helper()
	c := tunnel.Dial(context.Background(), addr, tunnel.ClientConfig{TLS: tlsConf, Logger: quiet, ConnectWait: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// startEdge runs the proxy over transport and returns the URL of the app database through it.
func startEdge(t testing.TB, transport link.Transport) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	edge := proxy.New(proxy.Config{
		Databases: []proxy.Database{{Name: pgtest.AppDB, User: pgtest.AppUser, Password: pgtest.AppPassword, Auth: pgwire.AuthSCRAM}},
		Transport: transport,
		Logger:    quiet,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- edge.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "postgres://" + pgtest.AppUser + ":" + pgtest.AppPassword + "@" + ln.Addr().String() + "/" + pgtest.AppDB + "?sslmode=disable"
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestPgxQueriesTheOriginThroughTheQUICTunnel(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 2})
	url := startEdge(t, dialPool(t, addr, edgeTLS))
	ctx := context.Background()
	conn := connect(t, url)

	var n int
	if err := conn.QueryRow(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
		t.Fatalf("extended query: %d, %v; want 42", n, err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE quic_t (v text) ON COMMIT DROP"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO quic_t VALUES ('a'), ('b')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM quic_t").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count in the transaction: %d, %v; want 2", n, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// An error comes back as the origin's, and the session goes on.
	_, err = conn.Exec(ctx, "SELECT 1/0")
	if err == nil || !strings.Contains(err.Error(), "22012") {
		t.Fatalf("division by zero: %v, want SQLSTATE 22012", err)
	}
	// COPY both ways.
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE quic_copy (v int)"); err != nil {
		t.Fatal(err)
	}
	rows := [][]any{{1}, {2}, {3}}
	if c, err := conn.CopyFrom(ctx, pgx.Identifier{"quic_copy"}, []string{"v"}, pgx.CopyFromRows(rows)); err != nil || c != 3 {
		t.Fatalf("COPY FROM: %d, %v; want 3", c, err)
	}
	if err := conn.QueryRow(ctx, "SELECT sum(v) FROM quic_copy").Scan(&n); err != nil || n != 6 {
		t.Fatalf("sum after COPY: %d, %v; want 6", n, err)
	}
	// LISTEN pins the session: notifications arrive while the client waits.
	if _, err := conn.Exec(ctx, "LISTEN quic_chan"); err != nil {
		t.Fatal(err)
	}
	other := connect(t, url)
	if _, err := other.Exec(ctx, "NOTIFY quic_chan, 'hi'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	note, err := conn.WaitForNotification(wctx)
	if err != nil || note.Payload != "hi" {
		t.Fatalf("notification: %v, %v", note, err)
	}
	if err := conn.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("query on the pinned session: %d, %v", n, err)
	}
}

func TestCancelReachesTheOriginThroughTheTunnel(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 2})
	s := openStream(t, dialPool(t, addr, edgeTLS))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, query("SELECT pg_sleep(20)")); err != nil {
		t.Fatal(err)
	}
	// The cancel may arrive before the query does: repeat it until the answer comes.
	answers := make(chan []byte, 1)
	go func() {
		out, err := recvAll(t, s)
		if err != nil {
			t.Error(err)
		}
		answers <- out
	}()
	for {
		if err := s.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case out := <-answers:
			if !strings.Contains(string(out), "57014") {
				t.Fatalf("answer after the cancel: %q, want SQLSTATE 57014", out)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the query was never canceled")
		}
	}
}

func TestACertificateFromAnotherCAIsRefused(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	strangerEdge, strangerPool := certs(t) // another deployment, another CA
	for _, tc := range []struct {
		name       string
		edge, pool *tls.Config
	}{
		{"an edge with a foreign certificate", strangerEdge, poolTLS},
		{"a pool with a foreign certificate", edgeTLS, strangerPool},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startPool(t, tc.pool, pool.Config{MaxConns: 1})
			c := dialPool(t, addr, tc.edge)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.Profile(ctx, pgtest.AppDB); err == nil {
				t.Fatal("Profile succeeded across deployments")
			}
			if _, err := c.Open(ctx, pgtest.AppDB, map[string]string{"user": pgtest.AppUser}); err == nil {
				t.Fatal("Open succeeded across deployments")
			}
		})
	}
	t.Run("the same deployment", func(t *testing.T) {
		addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 1})
		c := dialPool(t, addr, edgeTLS)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := c.Profile(ctx, pgtest.AppDB)
		if err != nil || p.Parameters["server_version"] == "" {
			t.Fatalf("Profile: %v, %v", p.Parameters, err)
		}
	})
}

// query builds a simple Query message.
func query(sql string) []byte {
	b, h := pgwire.BeginFrame(nil, 'Q')
	b = append(append(b, sql...), 0)
	return pgwire.FinishFrame(b, h)
}

// recvAll receives while the stream is pending.
func recvAll(t *testing.T, s link.Stream) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []byte
	for s.Pending() {
		var err error
		if out, err = s.Recv(ctx, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func openStream(t *testing.T, c *tunnel.Client) link.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Open(ctx, pgtest.AppDB, map[string]string{"user": pgtest.AppUser, "database": pgtest.AppDB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestALostOriginConnectionReachesTheEdgeAsErrOriginLost(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 1})
	s := openStream(t, dialPool(t, addr, edgeTLS))
	ctx := context.Background()
	if err := s.Send(ctx, query("SELECT pg_terminate_backend(pg_backend_pid())")); err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(t, s); !errors.Is(err, link.ErrOriginLost) {
		t.Fatalf("Recv after the origin connection died: %v, want ErrOriginLost", err)
	}
	if s.Pending() {
		t.Error("still pending after the error")
	}
}

func TestAnUnknownDatabaseFailsTheFirstUnitAsErrOriginLost(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 1})
	c := dialPool(t, addr, edgeTLS)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Open(ctx, "nosuchdb", nil)
	if err != nil {
		t.Fatal(err) // Open costs no round trip: the failure comes with the first answer
	}
	defer s.Close()
	// The pool end may have refused the stream before the batch is written: then Send fails.
	err = s.Send(ctx, query("SELECT 1"))
	if err == nil {
		_, err = recvAll(t, s)
	}
	if !errors.Is(err, link.ErrOriginLost) {
		t.Fatalf("Send or Recv: %v, want ErrOriginLost", err)
	}
}

func TestALargeResultStreamsWithoutThePoolEndBufferingItNorStallingOthers(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, server := startPool(t, poolTLS, pool.Config{MaxConns: 2})
	client := dialPool(t, addr, edgeTLS)
	s := openStream(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rows, width = 50_000, 1000 // 50 MB of row data
	if err := s.Send(ctx, query("SELECT repeat('x', 1000) FROM generate_series(1, 50000)")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recv(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The edge reads nothing more: the pool end must stall once the stream's flow-control window
	// is full, far short of the whole result.
	var sent int64
	for stable := 0; stable < 5; {
		select {
		case <-ctx.Done():
			t.Fatal("the pool end never stalled")
		case <-time.After(50 * time.Millisecond):
		}
		if now := tunnel.SentBytes(server); now == sent {
			stable++
		} else {
			sent, stable = now, 0
		}
	}
	if sent > 16<<20 {
		t.Errorf("the pool end wrote %d MB while the edge read nothing, want it held back by flow control", sent>>20)
	}
	t.Logf("pool end stalled after %.1f MB with the edge not reading", float64(sent)/(1<<20))
	// The stalled session holds back only itself: another on the same QUIC connection is
	// answered meanwhile.
	other := openStream(t, client)
	if err := other.Send(ctx, query("SELECT 42")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	answer, err := recvAll(t, other)
	if err != nil || !bytes.Contains(answer, []byte("42")) {
		t.Fatalf("another session beside the stalled one: %q, %v", answer, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("another session beside the stalled one took %v", d)
	}
	for s.Pending() {
		if got, err = s.Recv(ctx, got); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
	}
	if total := tunnel.SentBytes(server); total < rows*width {
		t.Errorf("the pool end sent %d bytes in all, want at least %d", total, rows*width)
	}
}

func TestTheEdgeRedialsALostPoolAndItsSessionsFailAsErrOriginLost(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	p, err := pool.New(pool.Config{Name: pgtest.AppDB, Origin: srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB), MaxConns: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	origins := map[string]link.Origin{pgtest.AppDB: p.Origin()}
	// serve runs a pool end on addr until the returned stop is called.
	serve := func(addr string) (string, func()) {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			tunnel.NewServer(tunnel.ServerConfig{Origins: origins, TLS: poolTLS, Logger: quiet}).Serve(ctx, pc)
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				<-done
				pc.Close()
			})
		}
		t.Cleanup(stop)
		return pc.LocalAddr().String(), stop
	}
	addr, stop := serve("127.0.0.1:0")
	c := dialPool(t, addr, edgeTLS)
	s := openStream(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Send(ctx, query("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(t, s); err != nil {
		t.Fatal(err)
	}

	if _, err := c.Profile(ctx, pgtest.AppDB); err != nil {
		t.Fatal(err)
	}
	stop() // the pool goes away
	if p, err := c.Profile(ctx, pgtest.AppDB); err != nil || p.Parameters["server_version"] == "" {
		t.Errorf("the cached profile while the pool is away: %v, %v", p.Parameters, err)
	}
	err = s.Send(ctx, query("SELECT 2")) // fails, or queues the query and the answer fails
	if err == nil {
		_, err = recvAll(t, s)
	}
	if !errors.Is(err, link.ErrOriginLost) {
		t.Fatalf("a session of the lost connection: %v, want ErrOriginLost", err)
	}

	serve(addr) // and comes back at the same address
	for {
		s2, err := c.Open(ctx, pgtest.AppDB, map[string]string{"user": pgtest.AppUser, "database": pgtest.AppDB})
		if err == nil {
			s2.Send(ctx, query("SELECT 3"))
			answers, err := recvAll(t, s2)
			s2.Close()
			if err == nil && strings.Contains(string(answers), "SELECT 1") {
				return // CommandComplete "SELECT 1": one row
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no session after the pool came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the edge redials with a backoff from 100ms
	}
}

func TestABatchSplitIntoSeveralFramesIsAnsweredAsOne(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 1})
	s := openStream(t, dialPool(t, addr, edgeTLS))
	big := "SELECT length('" + strings.Repeat("x", 3<<20) + "')"
	batch := append(append(query(big), query("SELECT 2")...), query("SELECT 3")...)
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	answers, err := recvAll(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(answers), "Z\x00\x00\x00\x05I"); n != 3 {
		t.Errorf("%d ReadyForQuery before the stream stopped being pending, want 3: %q", n, answers)
	}
}

func TestAHeldBackBeginOpensTheTransactionOfWhateverFollows(t *testing.T) {
	edgeTLS, poolTLS := certs(t)
	addr, _ := startPool(t, poolTLS, pool.Config{MaxConns: 2})
	url := startEdge(t, dialPool(t, addr, edgeTLS))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := connect(t, url)

	// Transaction modes reach the origin with the first statement.
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL SERIALIZABLE"); err != nil {
		t.Fatal(err)
	}
	var iso string
	if err := conn.QueryRow(ctx, "SHOW transaction_isolation").Scan(&iso); err != nil || iso != "serializable" {
		t.Fatalf("isolation in the transaction: %q, %v", iso, err)
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}

	// A batch that can't carry the BEGIN (it ends with Flush) gets it sent alone first.
	pc := conn.PgConn()
	if err := pc.Exec(ctx, "BEGIN").Close(); err != nil {
		t.Fatal(err)
	}
	if pc.TxStatus() != 'T' {
		t.Fatalf("status after BEGIN %q, want T", pc.TxStatus())
	}
	fe := pc.Frontend()
	fe.Send(&pgproto3.Parse{Query: "SELECT now() = statement_timestamp()"})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*pgproto3.ParseComplete); !ok {
		t.Fatalf("answer to Parse+Flush: %T, want ParseComplete", msg)
	}
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var row [][]byte
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := msg.(*pgproto3.DataRow); ok {
			row = nil
			for _, v := range d.Values {
				row = append(row, bytes.Clone(v))
			}
		}
		if z, ok := msg.(*pgproto3.ReadyForQuery); ok {
			if z.TxStatus != 'T' {
				t.Fatalf("status after the statement %q, want T: the BEGIN went missing", z.TxStatus)
			}
			break
		}
	}
	// In a transaction, now() is the transaction's start, earlier than the statement's.
	if len(row) != 1 || string(row[0]) != "f" {
		t.Errorf("row %q: now() = statement_timestamp(), so the statement ran outside a transaction", row)
	}
	if err := pc.Exec(ctx, "ROLLBACK").Close(); err != nil {
		t.Fatal(err)
	}
}

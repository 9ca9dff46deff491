package tunnel_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// startReverse runs an edge end listening on loopback UDP and a pool end that dials it (the
// reverse tunnel), and returns the edge end once the pool has connected.
func startReverse(t *testing.T, cfg pool.Config) *tunnel.Client {
	t.Helper()
	edgeTLS, poolTLS := certs(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	client, err := tunnel.Listen(ctx, pc, tunnel.ClientConfig{TLS: edgeTLS, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name = pgtest.AppDB
	cfg.Origin = srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB)
	cfg.Logger = quiet
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	server := tunnel.NewServer(tunnel.ServerConfig{
		Origins: map[string]link.Origin{pgtest.AppDB: p.Origin()},
		TLS:     poolTLS,
		Logger:  quiet,
	})
	done := make(chan error, 1)
	go func() { done <- server.DialEdge(ctx, pc.LocalAddr().String()) }()
	t.Cleanup(func() {
		cancel()
		client.Close()
		<-done
		p.Close()
	})
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if _, err := client.Profile(pctx, pgtest.AppDB); err != nil {
		t.Fatalf("no profile over the reverse tunnel: %v", err)
	}
	return client
}

func TestTheEdgeOpensSessionsOverAConnectionThePoolDialed(t *testing.T) {
	client := startReverse(t, pool.Config{MaxConns: 2})
	conn := connect(t, startEdge(t, client))
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT 40 + $1::int", 2).Scan(&n); err != nil || n != 42 {
		t.Fatalf("query over the reverse tunnel: %d, %v", n, err)
	}
	// The pool end that dialed renews the edge's lease on its cache as one that was dialed does.
	if !within(5*time.Second, client.CacheCurrent) {
		t.Error("the edge never got a lease on its cache over the reverse tunnel")
	}
}

// rawSession is a minimal PostgreSQL client: a TCP connection that logged in with trust and ran
// one query, then idles. It holds no buffers, so memory measured around many of them is the
// proxy's.
func rawSession(addr string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	params := "user\x00" + pgtest.AppUser + "\x00database\x00" + pgtest.AppDB + "\x00\x00"
	startup := binary.BigEndian.AppendUint32(nil, uint32(8+len(params)))
	startup = binary.BigEndian.AppendUint32(startup, 196608)
	startup = append(startup, params...)
	query := append([]byte{'Q', 0, 0, 0, 13}, "SELECT 1\x00"...)
	// Like a driver, wait for the startup's ReadyForQuery before sending the query.
	for _, msg := range [][]byte{startup, query} {
		if _, err := nc.Write(msg); err != nil {
			nc.Close()
			return nil, err
		}
		if err := readUntilReady(nc); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return nc, nil
}

// readUntilReady reads backend messages up to ReadyForQuery.
func readUntilReady(nc net.Conn) error {
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			return err
		}
		if hdr[0] == 'E' {
			return fmt.Errorf("error response")
		}
		if _, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(hdr[1:]))-4); err != nil {
			return err
		}
		if hdr[0] == 'Z' {
			return nil
		}
	}
}

// inUse is the memory the process holds for live objects and goroutine stacks.
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// TestTwoThousandSessionsShareOneReverseConnection opens 2,000 client sessions through one edge,
// all over the one QUIC connection its pool dialed, and reports the memory an idle session costs
// the edge and the pool end together (both run in this process):
//
//	go test ./tunnel -run TwoThousand -v
func TestTwoThousandSessionsShareOneReverseConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 sessions")
	}
	client := startReverse(t, pool.Config{MaxConns: 4})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	edge := proxy.New(proxy.Config{
		Databases: []proxy.Database{{Name: pgtest.AppDB, User: pgtest.AppUser, Auth: pgwire.AuthTrust}},
		Transport: client,
		Logger:    quiet,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- edge.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()

	const sessions = 2000
	warm, err := rawSession(ln.Addr().String()) // the first session pays for what all share
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	before := inUse()
	conns := make([]net.Conn, 0, sessions)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range sessions {
		c, err := rawSession(ln.Addr().String())
		if err != nil {
			t.Fatalf("session %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	after := inUse()
	if n := edge.Sessions(); n != sessions+1 {
		t.Errorf("the edge has %d sessions, want %d", n, sessions+1)
	}
	if n := tunnel.AcceptedConns(client); n != 1 {
		t.Errorf("the sessions went over %d connections, want 1", n)
	}
	t.Logf("memory per idle session, edge and pool end together: %.1f KiB (heap+stacks %d -> %d MiB over %d sessions)",
		float64(after-before)/sessions/1024, before>>20, after>>20, sessions)
}

package e2e

// How long a CancelRequest takes from the client to the origin: a TCP relay in front of
// PostgreSQL timestamps the arrival of each CancelRequest connection, against the time the
// client wrote its own CancelRequest, directly to the relay (the peer: what a cancel costs
// without Slipstream) and through serve and edge+pool.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// cancelRelay forwards TCP connections to PostgreSQL and reports when each CancelRequest
// arrives.
type cancelRelay struct {
	ln       net.Listener
	target   string
	arrivals chan time.Time // one per CancelRequest, at the end of its first 8 bytes
	wg       sync.WaitGroup
}

// cancelRequestCode is the protocol code of a CancelRequest (1234 << 16 | 5678).
const cancelRequestCode = 80877102

func startCancelRelay(t *testing.T, target string) *cancelRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &cancelRelay{ln: ln, target: target, arrivals: make(chan time.Time, 64)}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

func (r *cancelRelay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.relay(c)
		}()
	}
}

// relay reads a connection's first 8 bytes (length and code), notes a CancelRequest's arrival,
// and forwards the connection both ways until either side ends.
func (r *cancelRelay) relay(c net.Conn) {
	defer c.Close()
	var head [8]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return
	}
	if binary.BigEndian.Uint32(head[4:]) == cancelRequestCode {
		select {
		case r.arrivals <- time.Now():
		default:
		}
	}
	o, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer o.Close()
	if _, err := o.Write(head[:]); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(o, c); o.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, o); done <- struct{}{} }()
	<-done
	c.Close()
	o.Close()
	<-done
}

// url returns u with its host and port the relay's.
func (r *cancelRelay) url(t *testing.T, u string) string {
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = r.ln.Addr().String()
	return p.String()
}

// TestACancelReachesTheOriginAsFastAsDirect sends CancelRequests for running queries directly
// to the relay and through serve and edge+pool, checks that each query ends with 57014
// (query_canceled), and logs the median and p99 of the time from the client's write to the
// CancelRequest's arrival at the origin's side, for each. Measured, not asserted (the
// machine is shared); the bound is a millisecond.
func TestACancelReachesTheOriginAsFastAsDirect(t *testing.T) {
	ctx := testContext(t, 180*time.Second)
	relay := startCancelRelay(t, net.JoinHostPort(srv.Host, fmt.Sprint(srv.Port)))
	origin := relay.url(t, directURL())
	serve := runServeFor(t, pgtest.AppDB, []string{"--origin", origin})
	dir := makeCerts(t)
	pool := startNode(t, "pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test", "--origin", origin)
	edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir(), "--origin", origin)
	const rounds = 30
	targets := []struct{ name, url string }{
		{"direct (relay only)", origin}, {"serve", serve.plainURL()}, {"edge+pool", edge.appURL(t)},
	}
	for i, target := range targets {
		var took []time.Duration
		for j := range rounds {
			d, err := timeOneCancel(ctx, target.url, fmt.Sprintf("h12cancel_%d_%d", i, j), relay)
			if err != nil {
				t.Fatalf("%s: %v", target.name, err)
			}
			took = append(took, d)
		}
		slices.Sort(took)
		t.Logf("%-20s %d cancels, client write to origin arrival: median %v, p99 %v, max %v", target.name,
			rounds, took[len(took)/2], took[len(took)*99/100], took[len(took)-1])
	}
}

// timeOneCancel runs a long query on a new connection to u, waits until the origin runs it, sends
// a CancelRequest for it and returns how long the request took to reach the relay; the query
// must end canceled.
func timeOneCancel(ctx context.Context, u, appName string, relay *cancelRelay) (time.Duration, error) {
	cfg, err := pgconn.ParseConfig(u)
	if err != nil {
		return 0, err
	}
	cfg.RuntimeParams["application_name"] = appName
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	result := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(60)").ReadAll()
		result <- err
	}()
	// Until the origin runs it: a cancel before then would find nothing to cancel.
	admin, err := pgconn.Connect(ctx, directURL())
	if err != nil {
		return 0, err
	}
	defer admin.Close(ctx)
	if err := eventually(ctx, func() error {
		rs, err := admin.Exec(ctx, "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND application_name = '"+appName+"'").ReadAll()
		if err != nil {
			return err
		}
		if len(rs) == 0 || len(rs[0].Rows) == 0 {
			return errors.New("the query does not run yet")
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for len(relay.arrivals) > 0 {
		<-relay.arrivals
	}
	host, port := cfg.Host, cfg.Port
	nc, err := net.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	msg := binary.BigEndian.AppendUint32(nil, 16)
	msg = binary.BigEndian.AppendUint32(msg, cancelRequestCode)
	msg = binary.BigEndian.AppendUint32(msg, conn.PID())
	msg = append(msg, conn.SecretKey()...)
	sent := time.Now()
	if _, err := nc.Write(msg); err != nil {
		return 0, err
	}
	var arrived time.Time
	select {
	case arrived = <-relay.arrivals:
	case <-ctx.Done():
		return 0, fmt.Errorf("no CancelRequest reached the origin: %w", ctx.Err())
	}
	err = <-result
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		return 0, fmt.Errorf("the query ended with %v, want 57014 query_canceled", err)
	}
	return arrived.Sub(sent), nil
}

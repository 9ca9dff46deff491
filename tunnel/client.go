package tunnel

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/slipstream-proxy/slipstream/link"
)

// ClientConfig describes the edge end of the tunnel.
type ClientConfig struct {
	// TLS is the node's mutual TLS configuration (LoadTLS).
	TLS *tls.Config
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// ProfileMaxAge is how old a cached profile may be before a request for it starts a
	// refresh in the background; 0 means 10 seconds.
	ProfileMaxAge time.Duration
	// ConnectWait bounds how long Open and Profile wait for a connection to the pool when there
	// is none; 0 means 5 seconds.
	ConnectWait time.Duration
	// Cache is the edge's result cache, which the pool end invalidates after other edges'
	// writes; nil means the edge caches nothing.
	Cache Invalidator
}

// Invalidator drops cached answers that read tables of db (all: every answer of db);
// cache.Cache is one.
type Invalidator interface {
	Invalidate(db string, tables []string, all bool)
}

// Client is the edge end of the tunnel: a Transport over one long-lived QUIC connection to a
// pool, which it dialed (Dial) or which the pool dialed (Listen, the reverse tunnel). It keeps
// every database's Profile and refreshes it in the background, so that a client's startup
// never waits on the WAN once the edge is warm.
type Client struct {
	cfg  ClientConfig
	log  *slog.Logger
	ctx  context.Context // ends with Close; owns the background work
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	conn    *quic.Conn    // the connection new streams go on, or nil
	changed chan struct{} // closed, and replaced, whenever conn changes
	conns   []*quic.Conn  // every connection the edge accepted, to close them on the way out

	pmu      sync.Mutex
	profiles map[string]*profileEntry

	// The lease on the edge's cache (CacheCurrent): until when, in nanoseconds since epoch
	// (monotonic), the edge may serve cached answers of the pool's databases; 0: not now.
	epoch      time.Time
	leaseUntil atomic.Int64

	smu       sync.Mutex
	stateSeqs map[string]uint64 // the number of the last change-stream state applied, by database (streamstate.go)
}

type profileEntry struct {
	p          link.Profile
	at         time.Time // when the fetch of p started
	ok         bool      // p was fetched at least once
	refreshing bool
}

func newClient(ctx context.Context, cfg ClientConfig) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProfileMaxAge <= 0 {
		cfg.ProfileMaxAge = 10 * time.Second
	}
	if cfg.ConnectWait <= 0 {
		cfg.ConnectWait = 5 * time.Second
	}
	c := &Client{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}), profiles: map[string]*profileEntry{},
		epoch: time.Now()}
	c.ctx, c.stop = context.WithCancel(ctx)
	return c
}

// Dial returns a Client that keeps a connection to the pool at addr (UDP host:port) until ctx
// ends or Close: it dials at once, and again whenever the connection is lost.
func Dial(ctx context.Context, addr string, cfg ClientConfig) *Client {
	c := newClient(ctx, cfg)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.keepDialing(addr)
	}()
	return c
}

// Listen returns a Client that accepts pools' connections on pc (the reverse tunnel) until ctx
// ends or Close; sessions go on the newest connection.
func Listen(ctx context.Context, pc net.PacketConn, cfg ClientConfig) (*Client, error) {
	ln, err := quic.Listen(pc, cfg.TLS, quicConfig())
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	c := newClient(ctx, cfg)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer ln.Close()
		for {
			conn, err := ln.Accept(c.ctx)
			if err != nil {
				return
			}
			c.log.Info("a pool connected", "pool", conn.RemoteAddr().String())
			c.mu.Lock()
			c.conns = slices.DeleteFunc(c.conns, func(old *quic.Conn) bool { return old.Context().Err() != nil })
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.setConn(conn)
		}
	}()
	return c, nil
}

// Close closes the connections and waits for the background work to end. Streams still open
// fail.
func (c *Client) Close() error {
	c.stop()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.CloseWithError(0, "edge shutting down")
	}
	return nil
}

// keepDialing keeps a connection to addr until the client's context ends.
func (c *Client) keepDialing(addr string) {
	backoff := 100 * time.Millisecond
	for c.ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		conn, err := quic.DialAddr(dctx, addr, c.cfg.TLS, quicConfig())
		cancel()
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.log.Warn("dialing the pool failed", "pool", addr, "err", err, "retry_in", backoff)
			select {
			case <-c.ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		c.log.Info("connected to the pool", "pool", addr)
		c.setConn(conn)
		select {
		case <-conn.Context().Done():
			c.log.Warn("connection to the pool lost; redialing", "pool", addr, "err", context.Cause(conn.Context()))
		case <-c.ctx.Done():
			conn.CloseWithError(0, "edge shutting down")
		}
	}
}

// setConn makes conn the connection for new streams and refreshes every known profile over it.
// The edge may have missed invalidations while it had no connection: it drops what it cached
// of the pool's databases first, and hears of every later write from the pool end
// (serveInvalidations) for as long as conn lives.
func (c *Client) setConn(conn *quic.Conn) {
	c.leaseUntil.Store(0) // renewed over conn
	c.dropCache()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.serveInvalidations(conn)
	}()
	c.mu.Lock()
	c.conn = conn
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.pmu.Lock()
	for db, e := range c.profiles {
		c.refreshLocked(db, e)
	}
	c.pmu.Unlock()
}

// Alive reports whether the client has a live connection to a pool now. A pool that stops
// answering is noticed within the QUIC idle timeout (5 seconds).
func (c *Client) Alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && c.conn.Context().Err() == nil
}

// Lost reports whether the client's connection to the pool has ended and no new one is up
// yet: the pool, or the way to it, is gone, as far as the edge can tell. False before the
// first connection.
func (c *Client) Lost() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && c.conn.Context().Err() != nil
}

// Ping waits until the client has a live connection to a pool, up to ctx's deadline or
// ConnectWait, whichever comes first.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.connection(ctx)
	return err
}

// connection returns the live connection, waiting for one up to ConnectWait.
func (c *Client) connection(ctx context.Context) (*quic.Conn, error) {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		conn, changed := c.conn, c.changed
		c.mu.Unlock()
		if conn != nil && conn.Context().Err() == nil {
			return conn, nil
		}
		if timeout == nil {
			t := time.NewTimer(c.cfg.ConnectWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			return nil, fmt.Errorf("%w: tunnel: no connection to the pool", link.ErrOriginLost)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, fmt.Errorf("%w: tunnel: the edge is shutting down", link.ErrOriginLost)
		}
	}
}

// Warm fetches the profiles of dbs in the background, and again over every new connection.
func (c *Client) Warm(dbs ...string) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for _, db := range dbs {
		e := c.profiles[db]
		if e == nil {
			e = &profileEntry{}
			c.profiles[db] = e
		}
		c.refreshLocked(db, e)
	}
}

// refreshLocked starts a background fetch of db's profile unless one runs. c.pmu is held.
func (c *Client) refreshLocked(db string, e *profileEntry) {
	if e.refreshing || c.ctx.Err() != nil {
		return
	}
	e.refreshing = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		start := time.Now()
		p, err := c.fetchProfile(ctx, db)
		c.pmu.Lock()
		defer c.pmu.Unlock()
		e.refreshing = false
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Debug("refreshing an origin profile failed", "db", db, "err", err)
			}
			return
		}
		if start.After(e.at) { // not older than one fetched meanwhile (profileNow)
			e.p, e.at, e.ok = p, start, true
		}
	}()
}

// Profile implements Transport: the cached profile of db, refreshed in the background once it
// is older than ProfileMaxAge; only the first request for a database waits for the pool.
func (c *Client) Profile(ctx context.Context, db string) (link.Profile, error) {
	c.pmu.Lock()
	if e := c.profiles[db]; e != nil && e.ok {
		if time.Since(e.at) > c.cfg.ProfileMaxAge {
			c.refreshLocked(db, e)
		}
		p := e.p
		c.pmu.Unlock()
		return p, nil
	}
	c.pmu.Unlock()
	p, err := c.fetchProfile(ctx, db)
	if err != nil {
		return link.Profile{}, err
	}
	c.pmu.Lock()
	e := c.profiles[db]
	if e == nil {
		e = &profileEntry{}
		c.profiles[db] = e
	}
	e.p, e.at, e.ok = p, time.Now(), true
	c.pmu.Unlock()
	return p, nil
}

// profileNow fetches db's profile and keeps it, newer than any fetch that started before it.
// A database the edge never asked about is left alone: it fetches it when it does.
func (c *Client) profileNow(db string) error {
	c.pmu.Lock()
	_, known := c.profiles[db]
	c.pmu.Unlock()
	if !known {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	p, err := c.fetchProfile(ctx, db)
	if err != nil {
		return err
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if e := c.profiles[db]; e != nil && start.After(e.at) {
		e.p, e.at, e.ok = p, start, true
	}
	return nil
}

// fetchProfile asks the pool for db's profile on a stream of its own.
func (c *Client) fetchProfile(ctx context.Context, db string) (link.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectWait+10*time.Second)
	defer cancel()
	typ, b, err := c.request(ctx, nil, kindProfile, frameOpen, []byte(db))
	if err != nil {
		return link.Profile{}, err
	}
	switch typ {
	case frameProfile:
		p, err := parseProfile(b)
		if err != nil {
			return link.Profile{}, fmt.Errorf("tunnel: profile of %s: %w", db, err)
		}
		return p, nil
	case frameError:
		return link.Profile{}, decodeError(b)
	}
	return link.Profile{}, fmt.Errorf("%w: unexpected answer %q to a profile request", errBadFrame, typ)
}

// request sends one frame on a new stream of the given kind (on conn, or on the current
// connection when conn is nil) and reads the one frame that answers it.
func (c *Client) request(ctx context.Context, conn *quic.Conn, kind, typ byte, payload []byte) (byte, []byte, error) {
	if conn == nil {
		var err error
		if conn, err = c.connection(ctx); err != nil {
			return 0, nil, err
		}
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: tunnel: %w", link.ErrOriginLost, err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(codeStreamClosed)
		str.CancelWrite(codeStreamClosed)
	})
	defer stop()
	if _, err := str.Write(appendFrame([]byte{version, kind}, typ, payload)); err != nil {
		return 0, nil, fmt.Errorf("%w: tunnel: %w", link.ErrOriginLost, err)
	}
	str.Close()
	typ, b, err := readFrame(str, nil)
	str.CancelRead(codeStreamClosed)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("%w: tunnel: %w", link.ErrOriginLost, err)
	}
	return typ, b, nil
}

// Open implements Transport. It costs no round trip: the session's stream is opened and its
// first frame queued, and a failure on the pool side arrives as the answer to the first unit.
func (c *Client) Open(ctx context.Context, db string, params map[string]string) (link.Stream, error) {
	conn, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: tunnel: %w", link.ErrOriginLost, err)
	}
	s := &clientStream{c: c, conn: conn, str: str, mysql: params[ProtocolParam] == "mysql"}
	s.wbuf = appendHeader(append(s.wbuf, version, kindSession), frameOpen, 0)
	s.wbuf = appendOpen(s.wbuf, db, params)
	binary.BigEndian.PutUint32(s.wbuf[3:], uint32(len(s.wbuf)-2-headerLen))
	if _, err := str.Write(s.wbuf); err != nil {
		str.CancelWrite(codeStreamClosed)
		str.CancelRead(codeStreamClosed)
		return nil, fmt.Errorf("%w: tunnel: %w", link.ErrOriginLost, err)
	}
	return s, nil
}

// cancel asks the pool to cancel the query of the session on stream id of conn.
func (c *Client) cancel(ctx context.Context, conn *quic.Conn, id quic.StreamID) error {
	typ, b, err := c.request(ctx, conn, kindCancel, frameCancel, binary.BigEndian.AppendUint64(nil, uint64(id)))
	if err != nil {
		return err
	}
	switch typ {
	case frameOK:
		return nil
	case frameError:
		return decodeError(b)
	}
	return errors.New("tunnel: unexpected answer to a cancel request")
}

// CacheCurrent reports whether the edge may serve cached answers of the pool's databases now:
// whether it has heard the pool end renew its lease (frameLease) recently enough that the pool
// end, should it have sent an invalidation since that the edge never got, is still waiting for
// the edge's acknowledgement, and so has not let the write's answer out yet. An edge cut off from
// the pool stops serving its cache within the lease, long before it notices that the
// connection is gone (the idle timeout); it asks the pool, and fails, instead.
func (c *Client) CacheCurrent() bool {
	return int64(time.Since(c.epoch)) < c.leaseUntil.Load()
}

// renewLease takes a lease renewal that arrived on conn: it runs for lease from when it was
// sent, about half the connection's smoothed RTT ago. (The pool end's AckTimeout, twice the
// lease, leaves the other half of it for a renewal slower than that.)
func (c *Client) renewLease(conn *quic.Conn, lease time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != conn || conn.Context().Err() != nil {
		return
	}
	until := time.Since(c.epoch) + lease - conn.ConnectionStats().SmoothedRTT/2
	c.leaseUntil.Store(int64(until))
}

// dropCache invalidates every answer the edge cached of the databases it asked this pool
// about (all of the edge's, see Warm).
func (c *Client) dropCache() {
	if c.cfg.Cache == nil {
		return
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for db := range c.profiles {
		c.cfg.Cache.Invalidate(db, nil, true)
	}
}

// serveInvalidations applies the invalidations the pool end sends on conn, each on a stream of
// its own, acknowledging each once the cache has applied it. When conn ends the edge drops its
// cache of the pool's databases: it no longer hears of their writes.
func (c *Client) serveInvalidations(conn *quic.Conn) {
	defer c.dropCache()
	defer func() {
		c.mu.Lock()
		if c.conn == conn {
			c.leaseUntil.Store(0)
		}
		c.mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		str, err := conn.AcceptStream(c.ctx)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.servePoolStream(conn, str)
		}()
	}
}

// servePoolStream serves a stream the pool end opened, by its kind.
func (c *Client) servePoolStream(conn *quic.Conn, str *quic.Stream) {
	defer str.CancelRead(codeStreamClosed)
	stop := context.AfterFunc(c.ctx, func() { str.CancelRead(codeStreamClosed) }) // don't hold up Close
	defer stop()
	str.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head [2]byte
	if _, err := io.ReadFull(str, head[:]); err != nil || head[0] != version {
		str.CancelWrite(codeStreamClosed)
		return
	}
	switch head[1] {
	case kindInvalidate:
		c.invalidation(conn, str)
	case kindLease:
		str.CancelWrite(codeStreamClosed) // the edge sends nothing on it
		c.followLease(conn, str)
	default:
		str.CancelWrite(codeStreamClosed)
	}
}

// followLease takes the lease renewals of conn's lease stream until it ends.
func (c *Client) followLease(conn *quic.Conn, str *quic.Stream) {
	c.forgetStreamStates()
	var buf []byte
	for {
		str.SetReadDeadline(time.Time{})
		typ, b, err := readFrame(str, buf[:0])
		if err != nil {
			return
		}
		buf = b
		if typ == frameStreamState {
			if err := c.applyStreamState(conn, b); err != nil {
				c.log.Warn("malformed change-stream state from the pool; the cache is not served until the next good lease", "err", err)
				c.leaseUntil.Store(0)
			}
			continue
		}
		if typ != frameLease || len(b) != 4 {
			c.log.Warn("malformed lease renewal from the pool; the cache is not served until the next good one", "type", typ)
			c.leaseUntil.Store(0)
			continue
		}
		c.renewLease(conn, time.Duration(binary.BigEndian.Uint32(b))*time.Millisecond)
	}
}

// invalidation applies and acknowledges one invalidation, one notice of a changed catalog, or
// one change-stream state (streamstate.go).
func (c *Client) invalidation(conn *quic.Conn, str *quic.Stream) {
	typ, b, err := readFrame(str, nil)
	if err == nil && typ == frameCatalog {
		if err := c.profileNow(string(b)); err != nil {
			c.log.Warn("fetching a changed origin profile failed", "db", string(b), "err", err)
			str.CancelWrite(codeStreamClosed)
			return
		}
		str.Write(appendFrame(nil, frameOK, nil))
		str.Close()
		return
	}
	if err == nil && typ == frameStreamState {
		if err := c.applyStreamState(conn, b); err != nil {
			str.CancelWrite(codeStreamClosed)
			return
		}
		str.Write(appendFrame(nil, frameOK, nil))
		str.Close()
		return
	}
	if err != nil || typ != frameInvalidate {
		str.CancelWrite(codeStreamClosed)
		return
	}
	db, tables, all, err := parseInvalidate(b)
	if err != nil {
		str.CancelWrite(codeStreamClosed)
		return
	}
	if c.cfg.Cache != nil {
		c.cfg.Cache.Invalidate(db, tables, all)
	}
	str.Write(appendFrame(nil, frameOK, nil))
	str.Close()
}

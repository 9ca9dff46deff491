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
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// quicConfig is the QUIC configuration of both ends.
func quicConfig() *quic.Config {
	return &quic.Config{
		// One long-lived connection carries every session: keep it alive through NATs and
		// notice a dead peer within MaxIdleTimeout.
		// Placement moves databases off a pool whose connection died, so notice within seconds.
		KeepAlivePeriod: time.Second,
		MaxIdleTimeout:  5 * time.Second,
		// A stream per client session: the pool end accepts as many as an edge has clients.
		MaxIncomingStreams: 1 << 16,
		// A session's answers wait in its stream's window, at most MaxStreamReceiveWindow, while
		// its client is slow. The connection window is large enough that slow clients fill their
		// own streams' windows long before they fill the connection's, which would stall all.
		MaxStreamReceiveWindow:     4 << 20,
		MaxConnectionReceiveWindow: 512 << 20,
	}
}

// Stream error codes (QUIC application codes) for streams ended early.
const (
	codeStreamClosed quic.StreamErrorCode = 1 // the session is over: the edge closed it, or the pool end ended it
	codeShutdown     quic.StreamErrorCode = 2 // the connection or the process is shutting down
)

// codeNoAck closes the connection of an edge that did not acknowledge an invalidation in time.
const codeNoAck quic.ApplicationErrorCode = 3

// ServerConfig describes the pool end of the tunnel.
type ServerConfig struct {
	// Origins are the databases served, by name.
	Origins map[string]Origin
	// TLS is the node's mutual TLS configuration (LoadTLS).
	TLS *tls.Config
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// AckTimeout is how long an edge has to acknowledge an invalidation before the pool end
	// closes its connection, so that it can't serve what the write made stale (it drops its
	// cache when it reconnects); a write's last answer waits at most this long for the other
	// edges. 0 means 1 second.
	AckTimeout time.Duration
	// Cache is the cache the pool end shares among all its edges' sessions (poolcache.go): it
	// answers the units edges hint as cacheable, and reported writes invalidate it. nil: none,
	// every unit goes to the origin.
	Cache *cache.Cache
	// Metrics are the pool end's metrics; nil: unregistered ones.
	Metrics *Metrics
}

// leaseOf is the lease the pool end grants each edge on its cache, and how often it renews it:
// half the AckTimeout, every quarter. An edge cut off stops serving cached answers within the
// lease (plus the last renewal's one-way delay) of the last renewal it heard, so before the pool
// end, having waited AckTimeout for its acknowledgement, lets a write's answer out.
func leaseOf(ack time.Duration) (lease, every time.Duration) { return ack / 2, ack / 4 }

// Server is the pool end of the tunnel: it serves Origins to edges over QUIC connections, those
// edges dialed (Serve) or those it dialed itself (DialEdge, the reverse tunnel).
type Server struct {
	cfg ServerConfig
	log *slog.Logger
	m   *Metrics
	wg  sync.WaitGroup

	sent atomic.Int64 // bytes of answers written to streams, for tests

	mu    sync.Mutex
	conns map[*serverConn]struct{} // every edge connected now, to tell them about writes
}

// NewServer returns the pool end for cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Server{cfg: cfg, log: cfg.Logger, m: cfg.Metrics, conns: map[*serverConn]struct{}{}}
}

// Serve accepts edges' connections on pc until ctx ends, then closes them and waits for their
// sessions to end.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	ln, err := quic.Listen(pc, s.cfg.TLS, quicConfig())
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	defer s.wg.Wait()
	defer ln.Close()
	// Whatever ends the accepting ends the connections too, before waiting for them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tunnel: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
}

// DialEdge keeps a connection to the edge at addr until ctx ends, redialing whenever it is lost:
// the reverse tunnel, for a pool that accepts no connections. The edge opens its sessions over
// it as over a connection it dialed.
func (s *Server) DialEdge(ctx context.Context, addr string) error {
	defer s.wg.Wait()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := quic.DialAddr(dctx, addr, s.cfg.TLS, quicConfig())
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("dialing the edge failed", "edge", addr, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		s.log.Info("connected to the edge", "edge", addr)
		s.serveConn(ctx, conn)
		if ctx.Err() == nil {
			s.log.Warn("connection to the edge lost; redialing", "edge", addr)
		}
	}
	return nil
}

// serveConn serves one connection's streams until it ends or ctx does.
func (s *Server) serveConn(ctx context.Context, conn *quic.Conn) {
	log := s.log.With("edge", conn.RemoteAddr().String())
	stop := context.AfterFunc(ctx, func() { conn.CloseWithError(0, "shutting down") })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	// Registered before its first stream is accepted: an edge caches only answers read after
	// that, so the writes it is not told of were made before anything it caches was read.
	c := &serverConn{s: s, log: log, conn: conn, ctx: ctx, sessions: map[quic.StreamID]*serverSession{}}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.keepLease()
	}()
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			log.Debug("tunnel connection ended", "err", err)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.serveStream(ctx, str)
		}()
	}
}

// serverConn is the pool end's state of one connection: its open sessions, for Cancel.
type serverConn struct {
	s    *Server
	log  *slog.Logger
	conn *quic.Conn
	ctx  context.Context // the server's: an invalidation outlives the session that wrote

	mu       sync.Mutex
	sessions map[quic.StreamID]*serverSession
}

// keepLease renews the edge's lease on its cache (frameLease) on a stream of its own for as long
// as the connection lives. A renewal that can't be written in time is not retried: the edge's
// lease lapses, which costs it cache hits, never correctness.
func (c *serverConn) keepLease() {
	ctx := c.conn.Context()
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return
	}
	defer str.CancelWrite(codeStreamClosed)
	lease, every := leaseOf(c.s.cfg.AckTimeout)
	renewal := appendFrame(nil, frameLease, binary.BigEndian.AppendUint32(nil, uint32(lease.Milliseconds())))
	msg := append([]byte{version, kindLease}, renewal...)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		str.SetWriteDeadline(time.Now().Add(every))
		if _, err := str.Write(msg); err != nil {
			c.log.Debug("renewing the edge's cache lease failed", "err", err)
			return
		}
		msg = renewal
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// serveStream reads a stream's header and serves it by kind.
func (c *serverConn) serveStream(ctx context.Context, str *quic.Stream) {
	defer func() {
		// The edge tells a session this end ended (its reason in an error frame) from one cut
		// short by a shutdown, whose read it sends to another pool.
		if ctx.Err() != nil {
			str.CancelRead(codeShutdown)
		} else {
			str.CancelRead(codeStreamClosed)
		}
	}()
	var head [2]byte
	str.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(str, head[:]); err != nil {
		str.CancelWrite(codeStreamClosed)
		return
	}
	str.SetReadDeadline(time.Time{})
	if head[0] != version {
		str.Write(appendError(nil, fmt.Errorf("tunnel: protocol version %d is not %d", head[0], version)))
		str.Close()
		return
	}
	switch head[1] {
	case kindSession:
		c.serveSession(ctx, str)
	case kindProfile:
		c.serveProfile(ctx, str)
	case kindCancel:
		c.serveCancel(ctx, str)
	default:
		str.Write(appendError(nil, fmt.Errorf("tunnel: unknown stream kind %q", head[1])))
		str.Close()
	}
}

// serveProfile answers one Profile request.
func (c *serverConn) serveProfile(ctx context.Context, str *quic.Stream) {
	defer str.Close()
	typ, db, err := readFrame(str, nil)
	if err != nil || typ != frameOpen {
		return
	}
	o := c.s.cfg.Origins[string(db)]
	if o == nil {
		str.Write(appendError(nil, errNoDatabase))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := o.Profile(ctx)
	if err != nil {
		str.Write(appendError(nil, err))
		return
	}
	str.Write(appendFrame(nil, frameProfile, appendProfile(nil, p)))
}

// serveCancel cancels the query of a session of this connection.
func (c *serverConn) serveCancel(ctx context.Context, str *quic.Stream) {
	defer str.Close()
	typ, b, err := readFrame(str, nil)
	if err != nil || typ != frameCancel || len(b) != 8 {
		return
	}
	c.mu.Lock()
	ss := c.sessions[quic.StreamID(binary.BigEndian.Uint64(b))]
	c.mu.Unlock()
	if ss != nil {
		if err := ss.ps.Cancel(ctx); err != nil {
			str.Write(appendError(nil, err))
			return
		}
	}
	str.Write(appendFrame(nil, frameOK, nil))
}

// serverSession is the pool end of one client session.
type serverSession struct {
	c   *serverConn
	str *quic.Stream
	ps  Stream

	wmu sync.Mutex // writes to str: the reader's drains, the pinned pump's pushes, fail

	mysql   bool    // the session carries MySQL packets
	capture capture // the answer of a hinted unit the origin answers; the reader's

	// What the session's transaction wrote, as the edge reported it (frameWrites), until the
	// other edges are told: the reader sets it, whoever sends a batch's last answer tells them.
	db       string
	imu      sync.Mutex
	written  bool
	tables   []string
	allTabs  bool
	keepsAll bool // pinned: told at every last answer from now on, the edge reports no more
}

// noteWrites records a writes frame from the edge.
func (ss *serverSession) noteWrites(b []byte) error {
	tables, all, err := parseWrites(b)
	if err != nil {
		return err
	}
	ss.imu.Lock()
	defer ss.imu.Unlock()
	ss.written = true
	ss.allTabs = ss.allTabs || all || len(ss.tables)+len(tables) > maxTables
	if !ss.allTabs {
		ss.tables = append(ss.tables, tables...)
	}
	return nil
}

// tellWrites tells every other edge about the writes reported so far, and waits until each
// has acknowledged or has been disconnected: it runs before the answer that ends a batch goes
// out, so that no client learns of a write before every edge has dropped what it made stale.
func (ss *serverSession) tellWrites() {
	ss.imu.Lock()
	if !ss.written {
		ss.imu.Unlock()
		return
	}
	payload := appendWrites(nil, ss.tables, ss.allTabs)
	if c := ss.c.s.cfg.Cache; c != nil {
		// First this end's cache, which every edge reads through: an edge told of the write
		// may miss at once and must not find the answer from before it here.
		c.Invalidate(ss.db, ss.tables, ss.allTabs || len(ss.tables) > maxTables)
	}
	if !ss.keepsAll {
		ss.written, ss.tables, ss.allTabs = false, ss.tables[:0], false
	}
	ss.imu.Unlock()
	ss.c.s.invalidate(ss.c, ss.db, payload)
}

// invalidate sends an invalidation of db to every connection but from's, and returns when each
// has acknowledged it or has been closed for not doing so within AckTimeout.
func (s *Server) invalidate(from *serverConn, db string, writes []byte) {
	s.tell(from, db, appendFrame([]byte{version, kindInvalidate}, frameInvalidate, appendInvalidate(nil, db, writes)))
}

// CatalogChanged tells every connected edge that db's origin catalog changed (frameCatalog),
// and returns when each has fetched db's new profile or has been closed for not doing so
// within AckTimeout: a statement that changed the catalog gets its answer after that, so that
// no edge caches a read after it by the old catalog (the pool's OnCatalogChange).
func (s *Server) CatalogChanged(db string) {
	s.tell(nil, db, appendFrame([]byte{version, kindInvalidate}, frameCatalog, []byte(db)))
}

// tell sends frame, on an invalidation stream of its own, to every connection but from's, and
// returns when each has acknowledged it or has been closed for not doing so within AckTimeout.
func (s *Server) tell(from *serverConn, db string, frame []byte) {
	s.mu.Lock()
	peers := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		if c != from {
			peers = append(peers, c)
		}
	}
	s.mu.Unlock()
	if len(peers) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, c := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.invalidate(frame); err != nil {
				c.log.Warn("an edge did not acknowledge an invalidation; closing its connection", "db", db, "err", err)
				c.conn.CloseWithError(codeNoAck, "no acknowledgement of an invalidation")
			}
		}()
	}
	wg.Wait()
}

// invalidate sends one invalidation frame on a stream of its own and waits for the edge's
// acknowledgement, up to AckTimeout.
func (c *serverConn) invalidate(frame []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.AckTimeout)
	defer cancel()
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(codeStreamClosed)
		str.CancelWrite(codeStreamClosed)
	})
	defer stop()
	if _, err := str.Write(frame); err != nil {
		return err
	}
	str.Close()
	typ, _, err := readFrame(str, nil)
	str.CancelRead(codeStreamClosed)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return err
	case typ != frameOK:
		return fmt.Errorf("%w: answer %q to an invalidation", errBadFrame, typ)
	}
	return nil
}

// serveSession runs one client session: it opens it on its origin, then applies the edge's
// frames in order. After a batch that draws answers it receives them and sends them on, each
// chunk flagged with whether more are due, and at least one chunk, so that the edge, which
// waits for them, learns when to stop without asking. Once the session is pinned, a second
// goroutine receives continuously and pushes what comes.
//
// Backpressure: the edge's frames are read only as fast as the origin takes them, and answers
// are received only as fast as the stream's flow control lets them out, that is, as fast as
// the edge's client reads them: a large result never piles up here.
func (c *serverConn) serveSession(ctx context.Context, str *quic.Stream) {
	typ, b, err := readFrame(str, nil)
	if err != nil || typ != frameOpen {
		str.CancelWrite(codeStreamClosed)
		return
	}
	db, params, err := parseOpen(b)
	if err != nil {
		str.CancelWrite(codeStreamClosed)
		return
	}
	mysql := params[ProtocolParam] == "mysql"
	ss := &serverSession{c: c, str: str, db: db, mysql: mysql}
	defer func() {
		ss.wmu.Lock()
		str.Close()
		ss.wmu.Unlock()
	}()
	o := c.s.cfg.Origins[db]
	if o == nil {
		ss.fail(errNoDatabase)
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ps, err := o.Open(sctx, params)
	if err != nil {
		ss.fail(err)
		return
	}
	ss.ps = ps
	// The edge stopping reading (its Close) ends the session even while it waits on the origin.
	stop := context.AfterFunc(str.Context(), func() { ps.Close() })
	defer stop()
	c.mu.Lock()
	c.sessions[str.StreamID()] = ss
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.sessions, str.StreamID())
		c.mu.Unlock()
	}()

	var pump sync.WaitGroup
	defer pump.Wait()
	defer ps.Close()
	pinned := false
	draws := false // the client's batch, of which parts have been sent, draws answers
	var buf, rbuf []byte
	var h hint
	hinted := false // h hints the batch that comes next
	// Hints are keyed in the session's database and user too, whatever the edge's key covers:
	// no answer crosses to another database, or to a user who may see other rows.
	hintNS := db + "\x00" + params["user"]
	for {
		typ, b, err := readFrame(str, buf)
		buf = b
		if err != nil {
			break
		}
		switch typ {
		case frameSkip:
			ps.Skip(b)
			continue
		case frameWrites:
			if err := ss.noteWrites(b); err != nil {
				ss.fail(err)
				return
			}
			continue
		case frameHint:
			if err := parseHint(b, hintNS, &h); err != nil {
				ss.fail(err)
				return
			}
			hinted = true
			continue
		case frameBatch, frameMore:
		default:
			ss.fail(fmt.Errorf("%w: unexpected frame type %q", errBadFrame, typ))
			return
		}
		// A hint counts for a batch in one frame only, the first of a unit.
		useHint := hinted && typ == frameBatch && !draws && !pinned && ss.mayUseCache(&h, b, mysql)
		hinted = false
		if useHint {
			var served bool
			if rbuf, served, err = ss.fromCache(&h, b, rbuf); served {
				if err != nil {
					break
				}
				continue
			}
			// As at the edge, a key is kept at its first miss.
			if rbuf, served, err = ss.fromFlight(&h, b, rbuf, sctx.Done()); served {
				if err != nil {
					break
				}
				continue
			}
			ss.cacheMiss()
		}
		if err := ps.Send(sctx, b); err != nil {
			if !errors.Is(err, ErrTerminated) {
				ss.fail(err)
			}
			break
		}
		if mysql {
			d, _ := mysqlDrawsAnswers(b)
			draws = draws || d
		} else {
			draws = draws || drawsAnswers(b)
		}
		if cap(buf) > batchChunk {
			buf = nil // don't keep a large COPY buffer for an idle session
		}
		if typ == frameMore || pinned {
			continue // the pump sends everything once pinned
		}
		if draws {
			draws = false
			if rbuf, err = ss.drain(sctx, rbuf); err != nil {
				ss.dropCapture()
				ss.fail(err)
				break
			}
		}
		ss.dropCapture()
		if ps.Pinned() {
			pinned = true
			ss.imu.Lock()
			if ss.written {
				ss.allTabs = true // the edge reports a pinned session's writes no more
			}
			ss.keepsAll = true
			ss.imu.Unlock()
			pump.Add(1)
			go func() {
				defer pump.Done()
				ss.push(sctx)
			}()
		}
	}
	ss.dropCapture() // a flight this session led ends with it
	ps.Close()
	pump.Wait()
	ss.tellWrites() // a write cut off by the edge may still have been made
}

// dataHead is the room a receive buffer keeps in front for its data frame's header and flags,
// so that a chunk goes out in one write, without a copy.
const dataHead = headerLen + 1

// drain receives the answers due and sends each chunk as a data frame; the last one says
// nothing more is due, and there is at least one.
func (ss *serverSession) drain(ctx context.Context, buf []byte) ([]byte, error) {
	for {
		buf = append(buf[:0], make([]byte, dataHead)...)
		pending := ss.ps.Pending()
		if pending {
			var err error
			if buf, err = ss.ps.Recv(ctx, buf); err != nil {
				ss.tellWrites()
				if len(buf) > dataHead {
					ss.send(buf, false, false) // what came before the failure
				}
				return buf, err
			}
			pending = ss.ps.Pending()
		}
		if !pending {
			ss.tellWrites()
		}
		ss.capture.add(buf[dataHead:])
		if !pending {
			ss.finish() // before the answer's end goes out: the client's next read finds it
		}
		if err := ss.send(buf, pending, ss.ps.Pinned()); err != nil {
			return buf, err
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
		if !pending {
			return buf, nil
		}
	}
}

// push sends whatever the pinned session receives until it ends.
func (ss *serverSession) push(ctx context.Context) {
	var buf []byte
	for {
		var err error
		buf, err = ss.ps.Recv(ctx, append(buf[:0], make([]byte, dataHead)...))
		if len(buf) > dataHead {
			pending := ss.ps.Pending()
			if !pending {
				ss.tellWrites()
			}
			if serr := ss.send(buf, pending, true); serr != nil {
				ss.ps.Close()
				return
			}
		}
		if err != nil {
			if !errors.Is(err, link.ErrClosed) {
				ss.fail(err)
			}
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// send writes one data frame, whose answers follow dataHead bytes of room in frame. The edge's
// flow control holds it back while the client is slow.
func (ss *serverSession) send(frame []byte, pending, pinned bool) error {
	flags := byte(0)
	if pending {
		flags |= flagPending
	}
	if pinned {
		flags |= flagPinned
	}
	return ss.sendFlags(frame, flags)
}

// sendFlags writes one data frame with the given flags; see send.
func (ss *serverSession) sendFlags(frame []byte, flags byte) error {
	appendHeader(frame[:0], frameData, len(frame)-headerLen)
	frame[headerLen] = flags
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if _, err := ss.str.Write(frame); err != nil {
		return err
	}
	ss.c.s.sent.Add(int64(len(frame) - dataHead))
	return nil
}

// fail sends err as the session's last frame.
func (ss *serverSession) fail(err error) {
	if errors.Is(err, link.ErrClosed) && ss.str.Context().Err() != nil {
		return // the edge closed the session: nobody listens
	}
	ss.c.log.Debug("tunnel session failed", "err", err)
	ss.tellWrites()
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.str.Write(appendError(nil, err))
}

// Invalidate drops db's cached reads of tables (or all of db's) in this end's cache and on every
// connected edge, and returns when each edge has acknowledged or has been disconnected for not
// doing so: writes the pool heard of from the origin's own change stream (pool/changes).
func (s *Server) Invalidate(db string, tables []string, all bool) {
	all = all || len(tables) > maxTables
	if all {
		tables = nil
	}
	if c := s.cfg.Cache; c != nil {
		c.Invalidate(db, tables, all)
	}
	s.invalidate(nil, db, appendWrites(nil, tables, all))
}

package tunnel

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
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
	Origins map[string]link.Origin
	// TLS is the node's mutual TLS configuration (LoadTLS).
	TLS *tls.Config
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// AckTimeout is how long an edge has to acknowledge an invalidation before the pool end
	// closes its connection, so that it can't serve what the write made stale (it drops its
	// cache when it reconnects); a write's last answer waits at most this long for the other
	// edges. 0 means 1 second.
	AckTimeout time.Duration
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
	wg  sync.WaitGroup

	sent atomic.Int64 // bytes of answers written to streams, for tests

	mu    sync.Mutex
	conns map[*serverConn]struct{} // every edge connected now, to tell them about writes

	origins atomic.Pointer[map[string]link.Origin] // cfg.Origins, replaced whole by Set and Delete
	setMu   sync.Mutex                             // held while a new map is made from the current one

	smu    sync.Mutex             // states, seq
	states map[string]streamState // the databases' change-stream states (streamstate.go)
	seq    uint64                 // the last state's number
}

// NewServer returns the pool end for cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, conns: map[*serverConn]struct{}{}}
	origins := maps.Clone(cfg.Origins)
	if origins == nil {
		origins = map[string]link.Origin{}
	}
	s.origins.Store(&origins)
	return s
}

// Set adds the origin of database db, or replaces it for sessions opened from now on, as a
// configuration reload does (Local.Set, for the pool end).
func (s *Server) Set(db string, o link.Origin) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	next := maps.Clone(*s.origins.Load())
	next[db] = o
	s.origins.Store(&next)
}

// Delete removes database db: sessions opened from now on fail with the error of an unknown
// database; open ones are unaffected.
func (s *Server) Delete(db string) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	next := maps.Clone(*s.origins.Load())
	delete(next, db)
	s.origins.Store(&next)
}

// origin returns database db's origin, or nil.
func (s *Server) origin(db string) link.Origin { return (*s.origins.Load())[db] }

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
	msg := []byte{version, kindLease}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		// The change streams' states first (streamstate.go): a new edge has them before it may
		// serve its cache.
		msg = append(c.s.streamStateFrames(msg), renewal...)
		str.SetWriteDeadline(time.Now().Add(every))
		if _, err := str.Write(msg); err != nil {
			c.log.Debug("renewing the edge's cache lease failed", "err", err)
			return
		}
		msg = msg[:0]
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
	case kindRole:
		c.serveRole(ctx, str)
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
	o := c.s.origin(string(db))
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

// serverSession is the pool end of one client session, as the tunnel carries it: the stream,
// and the origin's session (with whatever the pool side puts in front of it, poolend).
type serverSession struct {
	c   *serverConn
	str *quic.Stream
	ps  link.Stream

	wmu sync.Mutex // writes to str: the reader's drains, the pinned pump's pushes, fail
}

// otherEdges are a session's link.Edges: every connection of the server but its own.
type otherEdges struct {
	s    *Server
	from *serverConn
}

func (e otherEdges) Invalidate(db string, tables []string, all bool) {
	e.s.invalidate(e.from, db, appendWrites(nil, tables, all))
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
// frames in order (serveFrames). After a batch that draws answers it receives them and sends
// them on, each chunk flagged with whether more are due, and at least one chunk, so that the
// edge, which waits for them, learns when to stop without asking. Once the session is pinned,
// a second goroutine receives continuously and pushes what comes.
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
	ss := &serverSession{c: c, str: str}
	defer func() {
		ss.wmu.Lock()
		str.Close()
		ss.wmu.Unlock()
	}()
	o := c.s.origin(db)
	if o == nil {
		ss.fail(errNoDatabase)
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The session's writes reach every other edge before their answers reach the client.
	ps, err := o.Open(link.WithEdges(sctx, otherEdges{s: c.s, from: c}), params)
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
	ss.serveFrames(sctx, params[ProtocolParam] == "mysql", &pump)
	ps.Close() // its pool side tells what it wrote: a write cut off by the edge may have been made
	pump.Wait()
}

// serveFrames applies the edge's frames to the session until the stream or the session ends;
// once the session is pinned, it starts the pump that pushes what the origin sends.
func (ss *serverSession) serveFrames(ctx context.Context, mysql bool, pump *sync.WaitGroup) {
	ps := ss.ps
	pinned := false
	draws := false // the client's batch, of which parts have been sent, draws answers
	var buf, rbuf []byte
	var next nextBatch
	for {
		typ, b, err := readFrame(ss.str, buf)
		buf = b
		if err != nil {
			return
		}
		if control, ok := ss.control(typ, b, &next); !ok {
			return
		} else if control {
			continue
		}
		// A hint counts for a batch in one frame only, the first of a unit, that draws answers.
		bDraws, bQuit := batchDraws(b, mysql)
		if next.hinted && typ == frameBatch && !draws && !pinned && bDraws && !bQuit {
			ss.hint(&next.h)
		}
		next.hinted = false
		if mysql && typ == frameBatch && !draws && !pinned {
			ss.route(next.routed)
		}
		next.routed = 0
		if err := ps.Send(ctx, b); err != nil {
			if !errors.Is(err, link.ErrTerminated) {
				ss.fail(err)
			}
			return
		}
		draws = draws || bDraws
		if cap(buf) > batchChunk {
			buf = nil // don't keep a large COPY buffer for an idle session
		}
		if typ == frameMore || pinned {
			continue // the pump sends everything once pinned
		}
		if draws {
			draws = false
			if rbuf, err = ss.drain(ctx, rbuf); err != nil {
				ss.fail(err)
				return
			}
		}
		if ps.Pinned() {
			pinned = true
			pump.Add(1)
			go func() {
				defer pump.Done()
				ss.push(ctx)
			}()
		}
	}
}

// nextBatch is what control frames said of the batch that comes next.
type nextBatch struct {
	h      hint
	hinted bool // h hints it
	routed byte // the route frame's flags (route.go)
}

// control handles a frame that carries no client messages (skip, writes, hint, route): control
// reports whether typ is one; ok false means the session failed and ends.
func (ss *serverSession) control(typ byte, b []byte, next *nextBatch) (control, ok bool) {
	var err error
	switch typ {
	case frameSkip:
		ss.ps.Skip(b)
	case frameWrites:
		err = ss.reportWrites(b)
	case frameHint:
		err = parseHint(b, &next.h)
		next.hinted = err == nil
	case frameRoute:
		next.routed, err = parseRoute(b)
	case frameBatch, frameMore:
		return false, true
	default:
		err = fmt.Errorf("%w: unexpected frame type %q", errBadFrame, typ)
	}
	if err != nil {
		ss.fail(err)
		return true, false
	}
	return true, true
}

// reportWrites passes a writes frame from the edge on to the session's pool side.
func (ss *serverSession) reportWrites(b []byte) error {
	tables, all, err := parseWrites(b)
	if err != nil {
		return err
	}
	if w := ss.ps.Caps().Writes; w != nil {
		w.ReportWrites(tables, all)
	}
	return nil
}

// hint passes the edge's cache hint on to the session's pool side, when it keeps a cache.
func (ss *serverSession) hint(h *hint) {
	if pc := ss.ps.Caps().PoolCache; pc != nil {
		pc.HintCacheable(h.key, h.tables, h.maxAge, h.swr)
	}
}

// batchDraws reports whether batch b draws answers, in its protocol, and whether it ends the
// session (MySQL's COM_QUIT).
func batchDraws(b []byte, mysql bool) (draws, quit bool) {
	if mysql {
		return mysqlwire.DrawsAnswers(b)
	}
	return pgwire.DrawsAnswers(b), false
}

// dataHead is the room a receive buffer keeps in front for its data frame's header and flags,
// so that a chunk goes out in one write, without a copy.
const dataHead = headerLen + 1

// drain receives the answers due and sends each chunk as a data frame; the last one says
// nothing more is due, and there is at least one. An answer the pool side's cache gave goes
// out as one data frame flagged cached: its answers follow a uint32, the milliseconds the
// answer stays fresh, so that the edge keeps it no longer.
func (ss *serverSession) drain(ctx context.Context, buf []byte) ([]byte, error) {
	for {
		buf = append(buf[:0], make([]byte, dataHead)...)
		pending := ss.ps.Pending()
		if pending {
			var err error
			if buf, err = ss.ps.Recv(ctx, buf); err != nil {
				if len(buf) > dataHead {
					ss.send(buf, false, false) // what came before the failure
				}
				return buf, err
			}
			if buf, pending = ss.cached(buf); !pending {
				return buf, ss.sendFlags(buf, flagCached)
			}
			pending = ss.ps.Pending()
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

// cached returns the frame of an answer the pool side's cache gave, with its freshness in
// front, and false; or buf as it was, and true.
func (ss *serverSession) cached(buf []byte) ([]byte, bool) {
	pc := ss.ps.Caps().PoolCache
	if pc == nil {
		return buf, true
	}
	fresh, ok := pc.FromPoolCache()
	if !ok {
		return buf, true
	}
	ss.ps.Pending() // the unit ends with its one answer
	out := make([]byte, dataHead, dataHead+4+len(buf)-dataHead)
	out = binary.BigEndian.AppendUint32(out, uint32(max(fresh/time.Millisecond, 1)))
	return append(out, buf[dataHead:]...), false
}

// push sends whatever the pinned session receives until it ends.
func (ss *serverSession) push(ctx context.Context) {
	var buf []byte
	for {
		var err error
		buf, err = ss.ps.Recv(ctx, append(buf[:0], make([]byte, dataHead)...))
		if len(buf) > dataHead {
			if serr := ss.send(buf, ss.ps.Pending(), true); serr != nil {
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
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.str.Write(appendError(nil, err))
}

// Invalidate has every connected edge drop its cached reads of tables of db (or all of db's),
// and returns when each has acknowledged or has been disconnected for not doing so: writes the
// pool heard of from the origin's own change stream (pool/changes). The pool's own cache is
// its owner's to invalidate, first.
func (s *Server) Invalidate(db string, tables []string, all bool) {
	all = all || len(tables) > maxTables
	if all {
		tables = nil
	}
	s.invalidate(nil, db, appendWrites(nil, tables, all))
}

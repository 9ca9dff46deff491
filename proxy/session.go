package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// session is one client connection after startup.
type session struct {
	s      *Server
	log    *slog.Logger
	nc     net.Conn
	r      *pgwire.Reader
	stream link.Stream
	key    pgwire.CancelKey // the BackendKeyData the client holds
	plain  bool             // nc is plaintext TCP: the session can be handed over (handover.go)

	mu    sync.Mutex
	fatal *pgwire.Error // why the session ends, sent by whoever writes to the client last

	// Caching; cache is nil when the database's results are not cached and the session's
	// writes go to nobody; state is the session's state, followed when cache is not nil.
	db      string
	params  map[string]string // startup parameters, for refresh sessions
	cache   *cacheState
	state   *sessionstate.PG
	caching Caching
	vol     map[string]byte // the origin's pg_proc volatilities, as of volAt
	rel     link.Related    // the origin's related relations, as of volAt
	volAt   time.Time
	ctx     context.Context // the session's, for asking the pool side
	capture []byte          // a copy of the answer being cached
	// pinnedWrites: a pinned session has written; its writer pump invalidates the whole
	// database at each ReadyForQuery, since it doesn't track which tables.
	pinnedWrites atomic.Bool

	begin beginHold // a BEGIN answered by the edge, sent with the next unit (begin.go)
	// drain: the server asks the session to end at its next request boundary (drain.go).
	drain drainState
}

// serveConn is one client's whole life. It recovers from a panic so that one client can't take
// the process down, and closes the client connection exactly once, on the way out.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	start := time.Now()
	log := s.log.With("client", nc.RemoteAddr().String())
	defer nc.Close()
	defer s.recovered(log)

	nc.SetDeadline(start.Add(s.cfg.HandshakeTimeout))
	st, err := s.handshake(ctx, nc)
	if err != nil {
		s.refuse(log, st.nc, err)
		return
	}
	s.serveStarted(ctx, log, st, nil, start)
}

// serveStarted serves a client whose startup is done: a new one (handed nil), which gets its
// startup answer, or one an old process handed over (handover.go), whose state is set up on
// the pool side first and who is told nothing.
func (s *Server) serveStarted(ctx context.Context, log *slog.Logger, st *startup, handed *HandedSession, start time.Time) {
	db := st.db.Name
	log = log.With("db", db, "user", st.params["user"])

	profile, err := s.cfg.Transport.Profile(ctx, db)
	if err != nil {
		log.Warn("origin unavailable for a new session", "err", err)
		s.refuse(log, st.nc, pgOriginError(err))
		return
	}
	stream, err := s.cfg.Transport.Open(ctx, db, st.params)
	if err != nil {
		log.Warn("opening the session on the pool side failed", "err", err)
		s.refuse(log, st.nc, pgOriginError(err))
		return
	}
	if handed == nil && needsCheck(st.params) && !s.settingsAccepted(ctx, log, st, stream) {
		stream.Close()
		return
	}
	sess := s.newSession(ctx, log, st, stream, profile, handed != nil)
	if handed != nil {
		if !s.adopted(ctx, sess, handed) {
			return
		}
	} else {
		sess.key = s.keys.add(sess)
	}
	defer s.keys.removeIf(sess.key, sess)

	if handed == nil {
		if _, err := st.nc.Write(appendStartupAnswer(nil, profile.Parameters, st.params, sess.key)); err != nil {
			stream.Close()
			return
		}
		st.nc.SetDeadline(time.Time{})
		s.m.setupTime.Observe(time.Since(start).Seconds())
		s.m.sessions.WithLabelValues(db).Inc()
	}
	defer s.countOpen(db)()
	log.Debug("session started", "handed_over", handed != nil)

	// The startup reader's buffer is empty: a client waits for ReadyForQuery before it sends.
	// Rebuild it with the session's message limit.
	sess.r = pgwire.NewReaderSize(st.nc, s.cfg.MaxMessage, sessionBuffer)
	sess.run(ctx)
	log.Debug("session ended", "duration", time.Since(start))
}

// settingsAccepted checks unusual startup settings on the pool side (one origin round trip,
// the exception to a setup without one) and reports whether the origin accepted them; when it
// did not, the client has been refused as PostgreSQL refuses it.
func (s *Server) settingsAccepted(ctx context.Context, log *slog.Logger, st *startup, stream link.Stream) bool {
	refusal, err := checkSettings(ctx, stream)
	switch {
	case err != nil:
		log.Warn("checking the session's settings on the pool side failed", "err", err)
		s.refuse(log, st.nc, pgwire.Fatal(pgwire.CannotConnectNow, "the origin database is not reachable"))
		return false
	case refusal != nil:
		// PostgreSQL refuses settings after authentication: AuthenticationOk comes first.
		st.nc.Write(append(pgwire.AppendAuthenticationOK(nil), refusal...))
		log.Info("client refused: the origin refused its startup settings")
		return false
	}
	return true
}

// newSession returns the session of a client whose startup succeeded, on stream; followed: its
// state is followed even when nothing else asks for it (a session handed over, to be handed
// over again).
func (s *Server) newSession(ctx context.Context, log *slog.Logger, st *startup, stream link.Stream, profile link.Profile, followed bool) *session {
	db := st.db.Name
	sess := &session{s: s, log: log, nc: st.nc, stream: stream, db: db, params: st.params,
		vol: profile.Volatility, rel: profile.Related, volAt: time.Now(), ctx: ctx, begin: beginHold{tx: 'I'}}
	if s.cfg.Cache != nil && !st.db.Caching.Disabled {
		sess.cache, sess.state, sess.caching = newCacheState(db, st.params), sessionstate.NewPG(), st.db.Caching
	} else if stream.Caps().Writes != nil || followed {
		// Not cached here, but the session's writes are reported all the same: the pool's
		// cache and the other edges' hold reads of them.
		sess.cache, sess.state, sess.caching = newCacheState(db, st.params), sessionstate.NewPG(), Caching{Disabled: true}
	}
	_, sess.plain = sess.tcpConn()
	sess.initDrain()
	return sess
}

// refuse sends a handshake error to the client when it is one of ours, and counts it.
func (s *Server) refuse(log *slog.Logger, nc net.Conn, err error) {
	if errors.Is(err, errHandled) {
		return
	}
	var pe *pgwire.Error
	if errors.As(err, &pe) {
		s.m.refused(pe)
		nc.Write(pgwire.AppendError(nil, pe))
		log.Info("client refused", "code", string(pe.Code), "reason", pe.Code.Name())
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
		log.Debug("handshake failed", "err", err)
	}
}

// run serves the session until either side ends it.
//
// It works in turns, as PostgreSQL itself does: read what the client sent, send it on, then
// write the answers due before reading the client again. One goroutine, no hand-offs on the
// hot path. A pinned session can receive notifications at any time, so from the moment it is
// pinned a second goroutine (writePump) takes over receiving and writing to the client.
// Backpressure: the client is read only as fast as the origin takes the writes, and the origin
// only as fast as the client takes the answers.
func (sess *session) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		sess.end(pgwire.Fatal(pgwire.AdminShutdown, "terminating connection due to administrator command"))
	})
	defer stop()
	defer sess.drain.busy() // an ended session is not idle: drain leaves it alone

	var pumpDone chan struct{} // set once the writer pump runs
	buf := make([]byte, 0, answerBuffer)
	for {
		idle := pumpDone == nil && sess.begin.tx == 'I' && sess.r.Buffered() == 0
		movable := idle && sess.movable()
		if pumpDone == nil && sess.drain.boundary(idle, movable) {
			if movable && sess.handOver() {
				sess.stream.Close()
				return // the connection is the new process's now: nothing is sent on it
			}
			sess.drain.end()
			break
		}
		frames, err := sess.r.ReadFrames()
		if pumpDone != nil {
			// Pinned: the writer pump finds the boundaries (drain.answered).
			if err == nil && !sess.drain.sent(countUnits(frames)) {
				break // the drain ended the session just before
			}
		} else if sess.drain.busy() {
			// Woken to be handed over: back to the boundary, unless a request came first.
			sess.nc.SetReadDeadline(time.Time{})
			if sess.ending() {
				sess.nc.SetReadDeadline(time.Now()) // end's wake-up stands
			} else if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
		}
		if err != nil {
			if errors.Is(err, pgwire.ErrTooLarge) || errors.Is(err, pgwire.ErrBadLength) {
				sess.end(pgwire.Fatal(pgwire.ProtocolViolation, "invalid message length"))
			}
			break
		}
		if pumpDone != nil {
			if !sess.sendPinned(ctx, frames) {
				break
			}
			continue
		}
		var ok bool
		if buf, ok = sess.exchange(ctx, frames, buf); !ok {
			break
		}
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, answerBuffer)
		}
		if sess.stream.Pinned() {
			if sess.drain.pinned(sess.begin.tx) {
				sess.drain.end()
				break
			}
			pumpDone = make(chan struct{})
			go func() {
				defer close(pumpDone)
				sess.writePump(ctx)
			}()
		}
	}
	sess.stream.Close()
	if pumpDone != nil {
		<-pumpDone
		return
	}
	sess.sendFatal()
}

// sendPinned sends a batch of a pinned session, whose answers the writer pump passes on; it
// reports false when the session is over.
func (sess *session) sendPinned(ctx context.Context, frames []byte) bool {
	if sess.cache != nil {
		if p := sess.plan(frames, true); len(p.writes) > 0 || p.writeAll {
			sess.pinnedWrites.Store(true) // the writer pump invalidates at each ReadyForQuery
			if r := sess.stream.Caps().Writes; r != nil {
				r.ReportWrites(nil, true) // and so does the pool end, for the other edges
			}
		}
	}
	if err := sess.stream.Send(ctx, frames); err != nil {
		sess.sendFailed(err)
		return false
	}
	return true
}

// retryable reports whether unit p may be sent again over another pool should the tunnel fail
// under it: a batch that is one whole unit of reads only, calling nothing volatile, outside a
// transaction block, on a session whose state the edge can set up again on a new pool side
// (its prepared statements, from what it has seen; no changed settings, nothing pinned).
func (sess *session) retryable(p *unitPlan) bool {
	st := sess.state
	return st != nil && st.Tx == 'I' && sess.begin.held == nil && !st.Dirty && !sess.stream.Pinned() &&
		p.whole && p.stmts > 0 && p.reads == p.stmts && len(p.writes) == 0 && !p.writeAll && !p.endsTx
}

// retryElsewhere opens the session again, on whichever pool the transport picks now, after
// the tunnel to the pool failed with err (tunnel.ErrPoolLost) under a retryable unit; it
// reports whether the unit may now be sent on the new stream. The new pool side is told the
// session's settings (SET), and of its prepared statements as after cache hits (Skip): it
// prepares them where needed.
func (sess *session) retryElsewhere(ctx context.Context, err error) bool {
	if !errors.Is(err, tunnel.ErrPoolLost) || ctx.Err() != nil {
		return false
	}
	sess.log.Info("the tunnel failed under a read; sending it again over another pool", "err", err)
	stream, oerr := sess.s.cfg.Transport.Open(ctx, sess.db, sess.params)
	if oerr != nil {
		sess.s.m.retries.WithLabelValues(sess.db, "failed").Inc()
		sess.log.Warn("no pool to send the read to again", "err", oerr)
		return false
	}
	if !restoreOn(ctx, stream, sess.state) {
		stream.Close()
		sess.s.m.retries.WithLabelValues(sess.db, "failed").Inc()
		sess.log.Warn("the next pool refused the session's settings; the read is not sent again")
		return false
	}
	sess.mu.Lock()
	old, ended := sess.stream, sess.fatal != nil
	sess.stream = stream
	sess.mu.Unlock()
	old.Close()
	if ended {
		return false // run closes the new stream on its way out
	}
	sess.s.m.retries.WithLabelValues(sess.db, "resent").Inc()
	return true
}

// applySettings says a session's settings (sessionstate.Settings.Script) to a new pool side, and
// reports whether they were answered without an error.
func applySettings(ctx context.Context, stream link.Stream, q string) bool {
	if q == "" {
		return true
	}
	resp, err := exchangeWhole(ctx, stream, pgwire.AppendFrame(nil, 'Q', append([]byte(q), 0)))
	if err != nil {
		return false
	}
	status, failed := scanAnswers(resp)
	return status == 'I' && !failed
}

// exchangeWhole sends frames on a stream of the edge's own (not the client's) and returns the
// whole answer.
func exchangeWhole(ctx context.Context, stream link.Stream, frames []byte) ([]byte, error) {
	if err := stream.Send(ctx, frames); err != nil {
		return nil, err
	}
	var resp []byte
	for stream.Pending() {
		var err error
		if resp, err = stream.Recv(ctx, resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// current returns the session's stream, for other goroutines: retryElsewhere may replace it.
func (sess *session) current() link.Stream {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.stream
}

// sendFailed ends the session after Send failed.
func (sess *session) sendFailed(err error) {
	if !errors.Is(err, link.ErrTerminated) {
		sess.failed(err)
	}
}

// failed records a pool-side failure as the reason the session ends.
func (sess *session) failed(err error) {
	if errors.Is(err, link.ErrOriginEnded) {
		// The client has the origin's FATAL (57P01 after pg_terminate_backend or a restart):
		// its connection ends after it, as it would direct, and its driver reconnects.
		sess.log.Info("the origin ended the connection under the session", "err", err)
		sess.end(nil)
		return
	}
	if errors.Is(err, link.ErrOriginLost) {
		sess.log.Warn("origin connection lost", "err", err)
		sess.end(pgwire.Fatal(pgwire.ConnectionFailure, "the connection to the origin database was lost"))
		return
	}
	sess.log.Debug("session stream ended", "err", err)
}

// writePump writes the pool side's answers to the client for a pinned session, until the
// session ends. While it runs it is the only writer to the client.
func (sess *session) writePump(ctx context.Context) {
	defer sess.nc.Close() // wakes the reader if the pool side ended first
	buf := make([]byte, 0, answerBuffer)
	for {
		var err error
		buf, err = sess.stream.Recv(ctx, buf[:0])
		if len(buf) > 0 {
			if sess.pinnedWrites.Load() && sess.s.cfg.Cache != nil {
				if st, _ := scanAnswers(buf); st != 0 {
					sess.s.cfg.Cache.Invalidate(sess.db, nil, true)
				}
			}
			if _, werr := sess.nc.Write(buf); werr != nil {
				sess.stream.Close()
				return
			}
			if n, status := readyStatuses(buf); n > 0 && sess.drain.answered(n, status) {
				sess.drain.end() // draining, and at a boundary: 57P01 now
			}
		}
		if err != nil {
			sess.failed(err)
			sess.sendFatal()
			return
		}
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, answerBuffer)
		}
	}
}

// sendFatal writes the recorded reason the session ends, if any.
func (sess *session) sendFatal() {
	sess.mu.Lock()
	fatal := sess.fatal
	sess.mu.Unlock()
	if fatal != nil {
		sess.s.m.refused(fatal)
		sess.nc.SetWriteDeadline(time.Now().Add(time.Second))
		sess.nc.Write(pgwire.AppendError(nil, fatal))
	}
}

// end records why the session ends (the first reason wins; nil: the client has been told),
// stops the pool side and wakes a read of the client, so that the session's writer sends the
// error and everything closes.
func (sess *session) end(e *pgwire.Error) {
	sess.mu.Lock()
	if sess.fatal == nil {
		sess.fatal = e
	}
	stream := sess.stream
	sess.mu.Unlock()
	stream.Close()
	sess.nc.SetReadDeadline(time.Now())
}

// refresh runs a stale unit again on a session of its own, in the background, and caches the
// fresh answer. A unit that binds a statement prepared earlier is sent with a Parse of it in
// front, whose ParseComplete is taken off the answer. The refresh belongs to the server: it
// ends with the server's context.
func (sess *session) refresh(ctx context.Context, frames []byte, p unitPlan) {
	c, s := sess.s.cfg.Cache, sess.s
	unit := bytes.Clone(frames)
	prefix := 0
	if !p.selfContained {
		pre, h := pgwire.BeginFrame(nil, 'P')
		pre = append(append(pre, p.stmtName...), 0)
		pre = append(append(pre, p.stmt.Query...), 0)
		pre = append(pre, p.stmt.Types...)
		unit = append(pgwire.FinishFrame(pre, h), unit...)
		prefix = 5 // ParseComplete
	}
	params, db, maxAge, swr := sess.params, sess.db, p.maxAge, sess.caching.StaleWhileRevalidate
	settings := sess.state.Settings.Script() // the key's: the new pool side must have them too
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer c.EndRefresh(p.key)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		stream, err := s.cfg.Transport.Open(rctx, db, params)
		if err != nil {
			return
		}
		defer stream.Close()
		if !applySettings(rctx, stream, settings) {
			return
		}
		snap := c.Snapshot(db, p.tables)
		resp, err := exchangeWhole(rctx, stream, unit)
		if err != nil {
			return
		}
		status, failed := scanAnswers(resp)
		if failed || status != 'I' || len(resp) < prefix || len(resp) > sess.caching.MaxResultBytes {
			return
		}
		c.Put(db, p.key, resp[prefix:], snap, maxAge, swr, time.Now())
	}()
}

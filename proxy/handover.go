package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// Handing sessions over to a new process, the upgrade that drops no client (SIGUSR2, see
// cmd/slipstream/cli/handover.go, which carries connections between the processes):
//
//	old process (HandOver)                          new process (Adopt)
//	 │ listeners closed here: the new process
//	 │ accepts on the same sockets
//	 │ each PostgreSQL session, at its next boundary:
//	 │  movable ── its connection and HandedSession ─>│ open on the pool side, SET its
//	 │                                                │ settings, tell it the prepared
//	 │                                                │ statements (Skip), serve: the client
//	 │                                                │ notices nothing
//	 │  not movable: drains (57P01 at its boundary, as Drain)
//
// A session can move (movable) when it is idle between transactions and all of its state is
// what the edge follows and a new pool side rebuilds, the same test as a read sent again over
// another pool (retryElsewhere): startup parameters, session-level SETs made outside
// transactions, prepared statements (told to the pool side, which prepares them on whichever
// origin connection serves the session), its cancel key. It must be plaintext: a TLS
// session's keys live in this process's memory (it drains). A pinned session (LISTEN, an
// advisory lock, a temporary table...) holds state on its origin connection and drains too,
// and so does one that changed state the edge cannot follow (dirty). MySQL sessions move
// the same way, with their own state (handover_mysql.go).

// HandedSession is a PostgreSQL client session's state, as an old process hands it to a new
// one with its connection.
type HandedSession struct {
	// DB is the database's name; Params the client's startup parameters.
	DB     string            `json:"db"`
	Params map[string]string `json:"params"`
	// Key is the BackendKeyData the client holds, for its cancel requests.
	Key pgwire.CancelKey `json:"key"`
	// Settings are the session-level SETs in force, by parameter, as their statements.
	Settings map[string]string `json:"settings,omitempty"`
	// Statements are the statements the client prepared; "" names the unnamed one.
	Statements []HandedStatement `json:"statements,omitempty"`
	// MySQL is set for a MySQL session (handover_mysql.go), whose Params are its pool side's
	// startup parameters; Key, Settings and Statements are PostgreSQL's.
	MySQL *HandedMySQL `json:"mysql,omitempty"`
}

// HandedStatement is a prepared statement of a HandedSession.
type HandedStatement struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	Types []byte `json:"types,omitempty"` // the Parse message's parameter type OIDs, as sent
}

// Handoff gives one session's client connection (a duplicate of its descriptor) and state to
// the new process. Once it returns nil the connection is the new process's; an error leaves
// it here, and the session drains.
type Handoff func(conn *os.File, h HandedSession) error

// HandOver is Drain for an upgrade: it stops accepting (the new process accepts on the same
// sockets), hands each session that can move to send at its next request boundary, and
// drains the others. Serve and ServeMySQL return once every session has moved or ended.
func (s *Server) HandOver(send Handoff) {
	s.handoff.Store(&send)
	s.drainAll(true)
}

// Adopt serves a client session that an old process handed over: conn is its client
// connection, h its state. The session is served as if its client had logged in here, without
// a word to the client. It returns an error, after telling the client (57P01; MySQL: 1053),
// when this server no longer serves the database or has stopped.
func (s *Server) Adopt(ctx context.Context, conn net.Conn, h HandedSession) error {
	if h.MySQL != nil {
		return s.adoptMySQL(ctx, conn, h)
	}
	db, ok := s.dbs.Load().pg[h.DB]
	if !ok || !s.loops.join(&s.wg) {
		conn.Write(pgwire.AppendError(nil, pgShutdown()))
		conn.Close()
		if !ok {
			return fmt.Errorf("adopt a session: database %q is not served here", h.DB)
		}
		return fmt.Errorf("adopt a session: the server has stopped")
	}
	go func() {
		defer s.wg.Done()
		log := s.log.With("client", conn.RemoteAddr().String())
		defer conn.Close()
		defer s.recovered(log)
		st := &startup{nc: conn, params: h.Params, db: db}
		s.observe(st)
		s.serveStarted(ctx, log, st, &h, time.Now())
	}()
	return nil
}

// countOpen counts a client session of database db as open, until the function it returns is
// called.
func (s *Server) countOpen(db string) (closed func()) {
	clients := s.m.clients.WithLabelValues(db)
	clients.Inc()
	s.active.Add(1)
	return func() {
		clients.Dec()
		s.active.Add(-1)
	}
}

// recovered ends a session that panicked (deferred), so that one client can't take the
// process down.
func (s *Server) recovered(log *slog.Logger) {
	if r := recover(); r != nil {
		log.Error("session panicked", "panic", r, "stack", string(debug.Stack()))
	}
}

// join adds a session that no accept loop started (Adopt) to wg, unless the accept loops
// have all stopped (the last one waits for wg as it stops); it reports false then.
func (l *acceptLoops) join(wg *sync.WaitGroup) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 && l.left {
		return false
	}
	wg.Add(1)
	return true
}

// movable reports whether the session, idle at a boundary, could be handed over (a pinned
// session is never idle there: its writer pump runs). It is asked at every boundary, for a
// handover that may start while the session waits, so it only reads fields.
func (sess *session) movable() bool {
	return sess.plain && sess.state != nil && sess.state.Quiet() && sess.begin.held == nil
}

// tcpConn returns the session's plaintext TCP connection, if it has one.
func (sess *session) tcpConn() (*net.TCPConn, bool) {
	nc := sess.nc
	if oc, ok := nc.(*observedConn); ok {
		nc = oc.Conn
	}
	tc, ok := nc.(*net.TCPConn)
	return tc, ok
}

// handOver gives the session to the new process; it reports false, the session still here,
// when that failed.
func (sess *session) handOver() bool {
	tc, ok := sess.tcpConn()
	return ok && sess.s.handOff(sess.log, tc, sess.handed())
}

// handOff gives a session's client connection and state to the new process (HandOver's
// Handoff); it reports false, the connection still this process's, when that failed.
func (s *Server) handOff(log *slog.Logger, tc *net.TCPConn, h HandedSession) bool {
	send := s.handoff.Load()
	if send == nil {
		return false
	}
	f, err := tc.File()
	if err != nil {
		log.Warn("handing the session over failed; it drains", "err", err)
		return false
	}
	defer f.Close()
	if err := (*send)(f, h); err != nil {
		log.Warn("handing the session over failed; it drains", "err", err)
		return false
	}
	log.Debug("session handed over to the new process")
	return true
}

// handed is the session's state for the new process.
func (sess *session) handed() HandedSession {
	ss := sess.state
	h := HandedSession{DB: sess.db, Params: sess.params, Key: sess.key, Settings: ss.Settings.ByName()}
	for name, st := range ss.Statements {
		h.Statements = append(h.Statements, HandedStatement{Name: name, Query: st.Query, Types: st.Types})
	}
	if ss.Unnamed.Query != "" {
		h.Statements = append(h.Statements, HandedStatement{Query: ss.Unnamed.Query, Types: ss.Unnamed.Types})
	}
	return h
}

// adopted sets up a handed-over session's state on its pool side and registers its cancel
// key; it reports false, the client told (57P01), when the pool side refused its settings.
func (s *Server) adopted(ctx context.Context, sess *session, h *HandedSession) bool {
	if !sess.restore(ctx, h) {
		sess.stream.Close()
		sess.log.Warn("the pool side refused a handed-over session's settings; it ends")
		s.refuse(sess.log, sess.nc, pgShutdown())
		return false
	}
	sess.key = h.Key
	if !s.keys.put(h.Key, sess) {
		sess.log.Warn("a handed-over session's cancel key is taken here: its cancel requests go nowhere")
	}
	return true
}

// restore takes a handed-over session's state and sets it up on the session's pool side; it
// reports false when the pool side refused the settings.
func (sess *session) restore(ctx context.Context, h *HandedSession) bool {
	ss := sess.state
	ss.Settings.Restore(h.Settings)
	sess.cache.rekey(&ss.Settings)
	for _, st := range h.Statements {
		ss.Prepare(st.Name, sessionstate.Statement{Query: st.Query, Types: st.Types})
	}
	return restoreOn(ctx, sess.stream, ss)
}

// restoreOn tells a new pool side a session's state, as it follows it: its settings (SET) and
// its prepared statements, as after cache hits (Skip), which the pool side prepares where
// needed. It reports false when the settings were refused.
func restoreOn(ctx context.Context, stream link.Stream, ss *sessionstate.PG) bool {
	if !applySettings(ctx, stream, ss.Settings.Script()) {
		return false
	}
	if parses := ss.AppendParses(nil); len(parses) > 0 {
		stream.Skip(parses)
	}
	return true
}

// ending reports whether the session has been told to end.
func (sess *session) ending() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.fatal != nil
}

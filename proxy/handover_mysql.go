package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// Handing a MySQL session over to a new process (HandOver, handover.go), as a PostgreSQL one
// is: at its next command boundary, a session that can move sends its connection and its
// state (HandedSession with MySQL set) and leaves without a word to the client; the new
// process (Adopt) opens it on its pool side, tells that side the session's state the way a
// read sent again over another pool does (restoreMySQL: USE, SET NAMES, the session
// variables' statements, the prepared statements registered under the ids the client holds)
// and serves it, under the connection id the client knows:
//
//	old process                                     new process
//	 │ boundary, movable (stateRestorable, plain TCP,
//	 │ the client reader not reading ahead, nothing
//	 │ buffered) ── connection + HandedMySQL ───────>│ Open, restoreMySQL, serve: the
//	 │                                               │ client's next COM_STMT_EXECUTE of
//	 │ not movable: drains (1053 at its boundary)    │ an id it holds runs there
//
// The client reader (mysqlreader.go) reads one packet ahead while commands go to the pool
// side, so at a boundary it is often in a read of the client: the session wakes that read (a
// read deadline in the past), takes what it returns, a packet the client sent meanwhile,
// served first, or the wake-up, and is at its boundary again with the connection its own. A
// read woken partway through a packet (mysqlwire.Reader.Torn) cannot be resumed: the session
// ends.
//
// What does not move: the diagnostics of the last statement (SHOW WARNINGS, FOUND_ROWS()
// read right after the handover see the new origin connection's); they are the origin
// connection's, which stays with the old process.

// HandedMySQL is a MySQL session's state beyond HandedSession's DB (its database, the edge's
// name) and Params (its pool side's startup parameters, mysqlParams).
type HandedMySQL struct {
	// ID is the connection id the client holds (the handshake's, what it passes to KILL).
	ID   uint32 `json:"id"`
	User string `json:"user"`
	// Caps and Ext are the capabilities negotiated with the client; Salt the handshake's,
	// which COM_CHANGE_USER scrambles with.
	Caps uint32 `json:"caps"`
	Ext  uint32 `json:"ext,omitempty"`
	Salt []byte `json:"salt"`
	// Status is the server status of the last answer (COM_PING's OK repeats it); Seq the
	// sequence id of the next packet to the client.
	Status uint16 `json:"status"`
	Seq    byte   `json:"seq"`
	// CurDB, Names and Vars are the database chosen with USE, SET NAMES or CHARACTER SET in
	// force, and the statements that set session variables, in order (mysqlCache's).
	CurDB string   `json:"cur_db,omitempty"`
	Names string   `json:"names,omitempty"`
	Vars  []string `json:"vars,omitempty"`
	// Stmts are the client's prepared statements, by the ids it holds.
	Stmts []HandedMyStmt `json:"stmts,omitempty"`
	// Replay is the last command when the cache answered it, replayed on the origin before a
	// statement that reads its diagnostics (mysqlcachereplay.go), with its statement.
	Replay        []byte        `json:"replay,omitempty"`
	ReplayStmt    *HandedMyStmt `json:"replay_stmt,omitempty"`
	ReplayTypesAt int           `json:"replay_types_at,omitempty"`
}

// HandedMyStmt is a prepared statement of a HandedMySQL.
type HandedMyStmt struct {
	ID     uint32 `json:"id"`
	SQL    string `json:"sql"`
	DB     string `json:"db,omitempty"` // the database it was prepared in; "" the session's first
	Params int    `json:"params"`
	// Types are the parameter types the client last sent; PoolTypes those the pool side
	// last got (registered with the statement).
	Types     []byte `json:"types,omitempty"`
	PoolTypes []byte `json:"pool_types,omitempty"`
}

// movable reports whether the session, at a command boundary, could be handed over: its
// state is all restorable on a new pool side, and its connection is plaintext TCP.
func (sess *mysqlSession) movable() bool {
	if sess.conn == nil || sess.conn.TLS || !sess.ready.Load() || sess.mc == nil {
		return false
	}
	if _, ok := sess.nc.(*net.TCPConn); !ok {
		return false
	}
	// Asked at every boundary: until the server drains, the walk over the prepared statements
	// waits. An idle session that may move is woken by the drain and asked again (drain.go).
	return !sess.drain.draining.Load() || sess.stateRestorable()
}

// handOver gives the session to the new process, once its client reader is not reading
// ahead; it reports false, the session still here, when that failed.
func (sess *mysqlSession) handOver() bool {
	tc, ok := sess.nc.(*net.TCPConn)
	if !ok || sess.cr.armed || sess.r.Buffered() > 0 {
		return false // a command the client sent already is read: it is served here
	}
	return sess.s.handOff(sess.log, tc, sess.handed())
}

// handed is the session's state for the new process.
func (sess *mysqlSession) handed() HandedSession {
	mc, ms := sess.mc, sess.state
	m := &HandedMySQL{ID: sess.id, User: sess.user, Caps: sess.caps, Ext: sess.ext, Salt: sess.conn.Salt(),
		Status: sess.status, Seq: sess.seq, CurDB: ms.DB, Names: ms.Names, Vars: ms.Vars}
	for id, st := range ms.Statements {
		m.Stmts = append(m.Stmts, handedStmt(id, st))
	}
	if len(mc.replay) > 0 {
		m.Replay, m.ReplayTypesAt = mc.replay, mc.replayTypesAt
		if st := mc.replayStmt; st != nil {
			h := handedStmt(binary.LittleEndian.Uint32(mc.replay[mysqlwire.HeaderLen+1:]), st)
			m.ReplayStmt = &h
		}
	}
	return HandedSession{DB: sess.db.Name, Params: sess.params, MySQL: m}
}

func handedStmt(id uint32, st *sessionstate.MySQLStatement) HandedMyStmt {
	return HandedMyStmt{ID: id, SQL: st.SQL, DB: st.DB, Params: st.Params, Types: st.Types, PoolTypes: st.PoolTypes}
}

func (h HandedMyStmt) stmt() *sessionstate.MySQLStatement {
	return &sessionstate.MySQLStatement{SQL: h.SQL, DB: h.DB, Params: h.Params, Types: h.Types, PoolTypes: h.PoolTypes}
}

// wakeToMove wakes the client reader's read ahead, so that the session, at its boundary and
// able to move, gets the connection back (woken); it reports false when there is no read to
// wake and the session can be handed over now.
func (sess *mysqlSession) wakeToMove() bool {
	if !sess.cr.armed {
		return false
	}
	sess.nc.SetReadDeadline(time.Now())
	return true
}

// afterWake follows a read that a wake-up (wakeToMove, or drain's for an idle session) may
// have ended: the read deadline is cleared, unless the session is ending; it reports whether
// the read ended only because of the wake-up, with the connection still at a packet boundary:
// the session goes back to its boundary then. fromReader: the packet came from the client
// reader, which stops after an error and is started again.
func (sess *mysqlSession) afterWake(ctx context.Context, p clientPacket, fromReader bool) (again bool) {
	sess.nc.SetReadDeadline(time.Time{})
	if sess.ending() {
		sess.nc.SetReadDeadline(time.Now()) // end's wake-up stands
		return false
	}
	if p.err == nil || !errors.Is(p.err, os.ErrDeadlineExceeded) || sess.r.Torn() {
		return false
	}
	if fromReader {
		cr := sess.cr
		close(cr.done)
		<-cr.exit
		sess.cr = sess.startReader(ctx)
	}
	return true
}

// ending reports whether the session has been told to end (end).
func (sess *mysqlSession) ending() bool {
	sess.fatal.mu.Lock()
	defer sess.fatal.mu.Unlock()
	return sess.fatal.e != nil || sess.fatal.killed
}

// adoptMySQL is Adopt for a MySQL session.
func (s *Server) adoptMySQL(ctx context.Context, conn net.Conn, h HandedSession) error {
	m := h.MySQL
	db, ok := s.dbs.Load().myByName[h.DB]
	if !ok || !s.loops.join(&s.wg) {
		conn.Write(mysqlwire.AppendError(nil, m.Seq, mysqlwire.Errorf(mysqlwire.ErServerShutdown)))
		conn.Close()
		if !ok {
			return fmt.Errorf("adopt a MySQL session: database %q is not served here", h.DB)
		}
		return fmt.Errorf("adopt a MySQL session: the server has stopped")
	}
	go func() {
		defer s.wg.Done()
		log := s.log.With("client", conn.RemoteAddr().String(), "protocol", "mysql", "db", db.Name, "user", m.User)
		defer conn.Close()
		defer s.recovered(log)
		s.serveAdoptedMySQL(ctx, log, conn, db, h)
	}()
	return nil
}

// serveAdoptedMySQL serves a MySQL session an old process handed over: it is opened on the
// pool side and given its state there (restoreMySQL), under the connection id its client
// holds when that is free here. A pool side that refuses the state ends it with 1053, as a
// drain would have.
func (s *Server) serveAdoptedMySQL(ctx context.Context, log *slog.Logger, conn net.Conn, db Database, h HandedSession) {
	m := h.MySQL
	collation, _ := strconv.ParseUint(h.Params["collation"], 10, 8)
	sess := &mysqlSession{s: s, log: log, db: db, user: m.User, nc: conn, params: h.Params, caps: m.Caps, ext: m.Ext,
		status: m.Status, seq: m.Seq}
	sess.initDrain()
	sess.id = s.myConns.addAs(m.ID, sess)
	defer s.myConns.remove(sess.id)
	if sess.id != m.ID {
		log.Warn("a handed-over MySQL session's connection id is taken here: it has another one", "id", m.ID, "now", sess.id)
	}
	sess.r = mysqlwire.NewReader(conn, s.cfg.MaxMessage)
	sess.conn = mysqlwire.Resume(conn, sess.r, mysqlwire.Response{User: m.User, Collation: byte(collation),
		Capabilities: m.Caps, ExtCapabilities: m.Ext}, m.Caps, m.Ext, m.Salt)
	refuse := func(why string, err error) {
		log.Warn(why+"; the handed-over session ends", "err", err)
		e := mysqlwire.Errorf(mysqlwire.ErServerShutdown)
		s.m.refusals.WithLabelValues(e.Code.Name()).Inc()
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		conn.Write(mysqlwire.AppendError(nil, m.Seq, e))
	}
	stream, err := s.cfg.Transport.Open(ctx, db.origin(), h.Params)
	if err != nil {
		refuse("opening the session on the pool side failed", err)
		return
	}
	sess.mu.Lock()
	sess.stream = stream
	sess.mu.Unlock()
	sess.mc, sess.state = s.newMySQLCache(db, m.User, m.Caps, m.Ext, byte(collation), stream.Caps())
	if !sess.restoreHanded(ctx, m) {
		stream.Close()
		refuse("the pool side refused the session's state", nil)
		return
	}
	sess.ready.Store(true)
	defer s.countOpen(db.Name)()
	log.Debug("session started", "handed_over", true)
	sess.run(ctx)
}

// restoreHanded takes a handed-over session's state and gives it to the session's pool side;
// it reports false when that side refused it, or this process does not follow the state of
// the database's sessions (no cache state) and there is state to give.
func (sess *mysqlSession) restoreHanded(ctx context.Context, m *HandedMySQL) bool {
	mc, ms := sess.mc, sess.state
	if mc == nil || ms == nil {
		return m.CurDB == "" && m.Names == "" && len(m.Vars) == 0 && len(m.Stmts) == 0
	}
	ms.DB, ms.Names, ms.Vars = m.CurDB, m.Names, append(ms.Vars[:0], m.Vars...)
	for _, h := range m.Stmts {
		ms.Statements[h.ID] = h.stmt()
	}
	if len(m.Replay) > mysqlwire.HeaderLen+4 {
		mc.replay, mc.replayTypesAt = m.Replay, m.ReplayTypesAt
		if h := m.ReplayStmt; h != nil {
			if st := ms.Statements[h.ID]; st != nil {
				mc.replayStmt = st
			} else {
				mc.replayStmt = h.stmt() // closed since: replayClosed prepares it again
			}
		}
	}
	return restoreMySQL(ctx, sess.stream, ms)
}

// addAs registers sess under id, the connection id its client holds, when that is free; else
// under a fresh one. It returns the id.
func (c *mysqlConns) addAs(id uint32, sess *mysqlSession) uint32 {
	c.mu.Lock()
	c.start()
	if _, taken := c.m[id]; !taken && id != 0 {
		c.m[id] = sess
		c.mu.Unlock()
		return id
	}
	c.mu.Unlock()
	return c.add(sess)
}

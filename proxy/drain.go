package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Draining, the way PostgreSQL and PgBouncer shut down without losing work: the server stops
// accepting, and each session ends at its next request boundary, that is once it is outside
// a transaction and waiting for the client's next request. A session inside a transaction
// finishes it first. The client gets the error its database would send when an administrator
// shuts it down (57P01 admin_shutdown; MySQL ER_SERVER_SHUTDOWN 1053), so that a pool in the
// application opens a new connection, to whichever process now listens.
//
// A session marks itself idle (drainState.idle) right before it reads the client's next
// request at a boundary, and busy once the read returns. drain sets the session's flag and,
// if the session is idle, ends it, which wakes the read; a session that is busy sees the
// flag itself at its next boundary. Both sides take drainState.mu, so one of them always
// sees the other.
//
// A session that became idle less than drainGrace before the drain may have its client's
// next request on the wire already (a client that connects per transaction has just logged
// in and sent BEGIN): ending it would answer that request with the shutdown error. It gets
// until drainGrace has passed since it became idle; if a request comes first, it is served
// to the end of its transaction and the session ends there. So does a session that completes
// its startup while the server drains (accepted just before the listener closed): its client
// is about to send its first request. A pinned PostgreSQL session (LISTEN, a session-level advisory lock...) has
// no boundary the edge can see and is ended only when the server stops.

// drainGrace is how long a session must have been idle for drain to end it at once.
const drainGrace = time.Second

// drainState is what drain and a session share.
type drainState struct {
	draining  atomic.Bool
	mu        sync.Mutex
	idle      bool
	idleSince time.Time
	served    bool   // the session has read a request
	end       func() // ends the session with the protocol's shutdown error; set before use
}

// boundary marks the session as waiting for a request (idle), or not, and reports whether it
// must end now because it drains and is idle. A session that has served nothing yet gets
// drainGrace for its first request instead.
func (d *drainState) boundary(idle bool) (endNow bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.idle = idle
	if !idle {
		return false
	}
	d.idleSince = time.Now()
	if !d.draining.Load() {
		return false
	}
	if !d.served {
		time.AfterFunc(drainGrace, d.endIfIdle)
		return false
	}
	return true
}

// busy marks the session as serving a request.
func (d *drainState) busy() {
	d.mu.Lock()
	d.idle = false
	d.served = true
	d.mu.Unlock()
}

// drain asks the session to end at its next boundary, and ends it if it is at one: now, or
// once it has been idle for drainGrace.
func (d *drainState) drain() {
	d.draining.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.idle {
		return
	}
	if wait := drainGrace - time.Since(d.idleSince); wait > 0 {
		time.AfterFunc(wait, d.endIfIdle)
		return
	}
	d.end()
}

// endIfIdle ends the session if it is still idle: if it went busy meanwhile, it ends itself
// at its next boundary (and a session that has ended is not idle).
func (d *drainState) endIfIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idle {
		d.end()
	}
}

// Drain stops accepting clients on every listener of Serve and ServeMySQL (which then return
// once their sessions have ended) and ends each session at its next request boundary. Ready
// reports false from now on. Cancelling Serve's context still ends every session at once.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.listeners.closeAll()
	s.drainSessions(func(string) bool { return true })
}

// DrainDatabase ends the sessions of the database named at their next request boundary, as
// Drain does, without stopping the server: for a database a reload removed (SetDatabases).
func (s *Server) DrainDatabase(name string) {
	s.drainSessions(func(db string) bool { return db == name })
}

func (s *Server) drainSessions(match func(db string) bool) {
	s.keys.mu.Lock()
	for _, sess := range s.keys.m {
		if match(sess.db) {
			sess.drain.drain()
		}
	}
	s.keys.mu.Unlock()
	s.myConns.mu.Lock()
	for _, sess := range s.myConns.m {
		if db, _, _ := sess.identity(); match(db) {
			sess.drain.drain()
		}
	}
	s.myConns.mu.Unlock()
}

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// pgShutdown is what a draining PostgreSQL session sends before it closes.
func pgShutdown() *pgwire.Error {
	return pgwire.Fatal(pgwire.AdminShutdown, "terminating connection due to administrator command")
}

// initDrain prepares a PostgreSQL session for drain; a server that drains already drains it.
func (sess *session) initDrain() {
	sess.drain.end = func() { sess.end(pgShutdown()) }
	if sess.s.draining.Load() {
		sess.drain.draining.Store(true)
	}
}

// initDrain prepares a MySQL session for drain.
func (sess *mysqlSession) initDrain() {
	sess.drain.end = func() { sess.end(mysqlwire.Errorf(mysqlwire.ErServerShutdown), false) }
	if sess.s.draining.Load() {
		sess.drain.draining.Store(true)
	}
}

// atBoundary reports whether a MySQL session waits for a command outside a transaction.
// The client reader may be the one reading it (clientReader.armed): ending the session wakes
// that read just the same.
func (sess *mysqlSession) atBoundary() bool {
	return sess.status&mysql.SERVER_STATUS_IN_TRANS == 0 && !sess.infile
}

// listeners are the listeners a Server accepts on.
type listeners struct {
	mu     sync.Mutex
	m      map[net.Listener]struct{}
	closed bool
}

// add registers ln; it reports false once closeAll has run.
func (l *listeners) add(ln net.Listener) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.m == nil {
		l.m = make(map[net.Listener]struct{})
	}
	l.m[ln] = struct{}{}
	return true
}

func (l *listeners) remove(ln net.Listener) {
	l.mu.Lock()
	delete(l.m, ln)
	l.mu.Unlock()
}

func (l *listeners) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for ln := range l.m {
		ln.Close()
	}
}

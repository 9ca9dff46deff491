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
// is about to send its first request.
//
// A pinned PostgreSQL session (LISTEN, a session-level advisory lock...) has its writer pump
// read the pool side while its reader reads the client, so its boundary is counted instead:
// the reader counts the units it sends (sent: each Query and Sync), the writer the
// ReadyForQuery messages it writes (answered), and the session is at a boundary when every
// unit is answered outside a transaction. A pinned session waiting for notifications is idle
// then, and ends as an idle session does (after the grace); one running a transaction ends
// when it is over. Its state on its origin connection ends with it, as it would in
// PostgreSQL's own shutdown. Cancelling the server's context (shutdown_timeout) ends the rest.

// A server that hands its sessions over to a new process (HandOver, handover.go) drains the
// same way, except that a session that can move (movable) does so at its boundary instead of
// ending: at once, with no grace, since a request on its way stays in the connection's
// socket, which moves with it. An idle one is woken for that: its read gets a deadline in the
// past (wake), and the session, seeing it was woken, goes back to its boundary.

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
	// Handing over (HandOver): handing is set when the server hands its sessions over;
	// movable says whether the session, idle at its boundary, can move; wake (set before use
	// by a session that can move) wakes its read; woken says wake did, until busy.
	handing atomic.Bool
	movable bool
	wake    func()
	woken   bool
	// A pinned session's units sent and not yet answered; ended: the drain has ended it
	// (the reader sends nothing more).
	outstanding int
	ended       bool
}

// pinned marks a session that has just become pinned, at the end of an exchange with
// transaction status tx, and reports whether it must end now (draining, outside a
// transaction).
func (d *drainState) pinned(tx byte) (endNow bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.outstanding = 0
	d.movable = false // never handed over: its state is on its origin connection
	d.idle = tx == 'I'
	d.idleSince = time.Now()
	if d.idle && d.draining.Load() {
		d.ended = true
		return true
	}
	return false
}

// sent counts units a pinned session's reader is about to send; it reports false when the
// drain has ended the session, and nothing may be sent.
func (d *drainState) sent(units int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return false
	}
	d.served = true
	d.outstanding += units
	if d.outstanding > 0 {
		d.idle = false
	}
	return true
}

// answered counts n ReadyForQuery messages a pinned session's writer wrote, the last with
// status; it reports whether the session must end now: draining, every unit answered, outside
// a transaction.
func (d *drainState) answered(n int, status byte) (endNow bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.outstanding = max(d.outstanding-n, 0)
	if d.outstanding > 0 || status != 'I' {
		return false
	}
	d.idle, d.idleSince = true, time.Now()
	if d.draining.Load() && d.served && !d.ended {
		d.ended = true
		return true
	}
	return false
}

// countUnits counts the units in a client's frames: each Query and each Sync gets one
// ReadyForQuery.
func countUnits(frames []byte) int {
	n := 0
	for rest := frames; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		rest = next
		if f.Type == 'Q' || f.Type == 'S' {
			n++
		}
	}
	return n
}

// readyStatuses counts the ReadyForQuery messages in answers and returns the last's status.
func readyStatuses(answers []byte) (n int, status byte) {
	for rest := answers; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		rest = next
		if f.Type == 'Z' && len(f.Body) > 0 {
			n, status = n+1, f.Body[0]
		}
	}
	return n, status
}

// boundary marks the session as waiting for a request (idle), or not, and reports whether it
// must end now because it drains and is idle. A session that has served nothing yet gets
// drainGrace for its first request instead.
//
// movable says whether the session, if idle, could be handed over now; a session that must
// end and can move does so instead.
func (d *drainState) boundary(idle, movable bool) (endNow bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.idle, d.movable = idle, idle && movable
	if !idle {
		return false
	}
	d.idleSince = time.Now()
	if !d.draining.Load() {
		return false
	}
	if d.movable && d.handing.Load() {
		return true
	}
	if !d.served {
		time.AfterFunc(drainGrace, d.endIfIdle)
		return false
	}
	return true
}

// busy marks the session as serving a request. It reports whether the read that ended was
// woken for a handover (wake): the session then clears its read deadline.
func (d *drainState) busy() (woken bool) {
	d.mu.Lock()
	d.idle = false
	d.served = true
	woken, d.woken = d.woken, false
	d.mu.Unlock()
	return woken
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
	if d.movable && d.handing.Load() {
		d.woken = true
		d.wake()
		return
	}
	if wait := drainGrace - time.Since(d.idleSince); wait > 0 {
		time.AfterFunc(wait, d.endIfIdle)
		return
	}
	d.ended = true
	d.end()
}

// endIfIdle ends the session if it is still idle: if it went busy meanwhile, it ends itself
// at its next boundary (and a session that has ended is not idle).
func (d *drainState) endIfIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idle && !d.ended {
		d.ended = true
		d.end()
	}
}

// Drain stops accepting clients on every listener of Serve and ServeMySQL (which then return
// once their sessions have ended) and ends each session at its next request boundary. Ready
// reports false from now on. Cancelling Serve's context still ends every session at once.
func (s *Server) Drain() {
	s.drainAll(false)
}

// drainAll is Drain; handing: sessions that can move are handed over (HandOver).
func (s *Server) drainAll(handing bool) {
	s.draining.Store(true)
	s.listeners.closeAll()
	s.drainSessions(func(string) bool { return true }, handing)
}

// DrainDatabase ends the sessions of the database named at their next request boundary, as
// Drain does, without stopping the server: for a database a reload removed (SetDatabases).
func (s *Server) DrainDatabase(name string) {
	s.drainSessions(func(db string) bool { return db == name }, false)
}

func (s *Server) drainSessions(match func(db string) bool, handing bool) {
	s.keys.mu.Lock()
	for _, sess := range s.keys.m {
		if match(sess.db) {
			if handing {
				sess.drain.handing.Store(true)
			}
			sess.drain.drain()
		}
	}
	s.keys.mu.Unlock()
	s.myConns.mu.Lock()
	for _, sess := range s.myConns.m {
		if db, _, _ := sess.identity(); match(db) {
			if handing {
				sess.drain.handing.Store(true)
			}
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
	sess.drain.wake = func() { sess.nc.SetReadDeadline(time.Now()) }
	if sess.s.draining.Load() {
		sess.drain.draining.Store(true)
		sess.drain.handing.Store(sess.s.handoff.Load() != nil)
	}
}

// initDrain prepares a MySQL session for drain.
func (sess *mysqlSession) initDrain() {
	sess.drain.end = func() { sess.end(mysqlwire.Errorf(mysqlwire.ErServerShutdown), false) }
	sess.drain.wake = func() { sess.nc.SetReadDeadline(time.Now()) }
	if sess.s.draining.Load() {
		sess.drain.draining.Store(true)
		sess.drain.handing.Store(sess.s.handoff.Load() != nil)
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

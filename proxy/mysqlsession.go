package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// fatalSlot holds why a MySQL session ends, set by whoever ends it (the server shutting down,
// a KILL from another client, the session itself); the first reason wins. The session's own
// goroutine sends it, being the only writer to the client.
type fatalSlot struct {
	mu sync.Mutex
	e  *mysqlwire.Error
	// killed: ended by KILL, which sends the client nothing, as MySQL does.
	killed bool
}

// run serves the session until either side ends it.
//
// It works in turns, as a MySQL server does: take one command, send it on, write the answer
// while the pool side has more of it, take the next command. The client is read by a second
// goroutine one packet ahead (clientReader), only so that a client gone mid-command is noticed
// at once. Backpressure: the client is read only as fast as the origin takes its commands,
// and the origin only as fast as the client reads the answers (TCP flow control both ways).
func (sess *mysqlSession) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		sess.end(mysqlwire.Errorf(mysqlwire.ErServerShutdown), false)
	})
	defer stop()
	defer sess.drain.busy() // an ended session is not idle: drain leaves it alone
	defer func() { sess.current().Close() }()

	sess.cr = sess.startReader(ctx)
	defer func() { sess.stopReader(sess.cr) }() // a handover may start another (afterWake)
	buf := make([]byte, 0, answerBuffer)
	for {
		idle := sess.atBoundary()
		movable := idle && sess.movable()
		waking := false
		if sess.drain.boundary(idle, movable) {
			// Handing over (handover_mysql.go): a session that can move does, once its client
			// reader stops reading ahead; the others end.
			if waking = movable && sess.wakeToMove(); !waking {
				if movable && sess.handOver() {
					return // the connection is the new process's now: nothing is sent on it
				}
				sess.drain.end()
				break
			}
		}
		armed := sess.cr.armed
		p := sess.next()
		// A wake-up may also reach a read ahead the reader started after handing over a packet
		// the client sent meanwhile: any read error may be one.
		if woken := sess.drain.busy(); (woken || waking || p.err != nil) && sess.afterWake(ctx, p, armed) {
			continue
		}
		raw, err := p.raw, p.err
		if err != nil {
			sess.seq = p.seq + 1
			switch {
			case errors.Is(err, mysqlwire.ErrTooLarge):
				sess.end(mysqlwire.Errorf(mysqlwire.ErNetPacketTooLarge), false)
			case errors.Is(err, mysqlwire.ErrOutOfOrder):
				sess.end(mysqlwire.Errorf(mysqlwire.ErNetPacketsOutOfOrder), false)
			}
			break
		}
		var ok bool
		sess.busy.Store(true)
		sess.observed.begin(sess, raw, time.Now())
		buf, ok = sess.command(ctx, raw, buf)
		sess.observed.finish(sess, time.Now())
		sess.busy.Store(false)
		sess.cr.settle()
		if !ok {
			break
		}
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, answerBuffer)
		}
	}
	sess.sendFatal()
}

// command handles one logical packet from the client. It reports false when the session is
// over.
func (sess *mysqlSession) command(ctx context.Context, raw, buf []byte) ([]byte, bool) {
	if sess.infile {
		// LOAD DATA LOCAL: the file's contents, ending with an empty packet.
		sess.seq = mysqlwire.LastSeq(raw) + 1
		sess.cr.watch()
		if err := sess.stream.Send(ctx, raw); err != nil {
			return buf, sess.sendFailed(err)
		}
		if len(raw) > mysqlwire.HeaderLen {
			return buf, true
		}
		sess.infile = false
		return sess.answer(ctx, buf)
	}
	if mysqlwire.Seq(raw) != 0 {
		sess.end(mysqlwire.Errorf(mysqlwire.ErNetPacketsOutOfOrder), false)
		return buf, false
	}
	sess.seq = mysqlwire.LastSeq(raw) + 1
	sess.sslStatus = false
	p := raw[mysqlwire.HeaderLen:] // the command byte and what follows, as far as the first packet goes
	if len(p) == 0 {
		return buf, sess.writeError(mysqlwire.Errorf(mysqlwire.ErUnknownCom))
	}
	switch cmd := p[0]; {
	case cmd == mysql.COM_QUIT:
		err := sess.stream.Send(ctx, raw)
		if err != nil && !errors.Is(err, link.ErrTerminated) {
			sess.log.Debug("COM_QUIT", "err", err)
		}
		return buf, false
	case cmd == mysql.COM_PING:
		return buf, sess.write(mysqlwire.AppendOK(buf[:0], sess.seq, sess.status))
	case cmd == mysql.COM_PROCESS_KILL && len(p) >= 5:
		return buf, sess.kill(ctx, binary.LittleEndian.Uint32(p[1:]), false)
	case cmd == mysql.COM_QUERY:
		if id, query, ok := parseKill(p[1:]); ok {
			return buf, sess.kill(ctx, id, query)
		}
		sess.sslStatus = isShowStatus(p[1:])
	case cmd == mysql.COM_CHANGE_USER:
		return buf, sess.changeUser(ctx, raw)
	case !forwardedCommands[cmd]:
		return buf, sess.writeError(mysqlwire.Errorf(mysqlwire.ErUnknownCom))
	}
	if sess.mc != nil {
		return sess.mysqlCommand(ctx, raw, buf)
	}
	sess.cr.watch()
	if err := sess.stream.Send(ctx, raw); err != nil {
		return buf, sess.sendFailed(err)
	}
	return sess.answer(ctx, buf)
}

// answer writes the pool side's answer to the command just sent, for as long as it is
// pending.
func (sess *mysqlSession) answer(ctx context.Context, buf []byte) ([]byte, bool) {
	return sess.answerOr(ctx, buf, nil)
}

// answerOr is answer for a command that may be sent again, as resend, over another pool should
// the tunnel fail before any of its answer was written (mysqlRetryable); nil: it may not.
func (sess *mysqlSession) answerOr(ctx context.Context, buf, resend []byte) ([]byte, bool) {
	wrote, resent := false, 0
	for sess.stream.Pending() {
		var err error
		buf, err = sess.stream.Recv(ctx, buf[:0])
		if len(buf) > 0 {
			wrote = true
			if sess.mc != nil {
				sess.beforeMySQLAnswer(buf)
			}
			out := buf
			if sess.sslStatus {
				version, cipher := sess.tlsStatus()
				if b := rewriteSSLStatus(sess.sslBuf, buf, version, cipher); b != nil {
					out, sess.sslBuf = b, b
				}
			}
			if _, werr := sess.nc.Write(out); werr != nil {
				return buf, false
			}
			sess.noteAnswer(buf)
		}
		if err != nil {
			if errors.Is(err, link.ErrQueueTimeout) && !wrote {
				return buf, sess.queueTimeout()
			}
			if !wrote && resend != nil && sess.mysqlRetryElsewhere(ctx, err, resend) {
				if resent++; resent >= mysqlMaxResends {
					resend = nil
				}
				continue
			}
			sess.failed(err)
			return buf, false
		}
	}
	return buf, true
}

// sessionStatus are the status flags that describe the session rather than one answer: the
// ones the edge's own OK packets (COM_PING) repeat.
const sessionStatus = mysqlwire.SessionStatus

// noteAnswer keeps the sequence id and the status flags of the answer's last packet, and
// notices a LOAD DATA LOCAL request (0xfb), after which the client sends a file.
func (sess *mysqlSession) noteAnswer(b []byte) {
	sess.observed.answer(b)
	var last []byte
	for len(b) >= mysqlwire.HeaderLen {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		end := min(len(b), mysqlwire.HeaderLen+n)
		last, b = b[:end], b[end:]
	}
	if last == nil {
		return
	}
	sess.seq = last[3] + 1
	p := last[mysqlwire.HeaderLen:]
	if sess.stream.Pending() || len(p) == 0 {
		return
	}
	switch {
	case p[0] == 0xfb:
		sess.infile = true
	case p[0] == 0xfe && len(p) == 5: // EOF: warnings, status
		sess.status = binary.LittleEndian.Uint16(p[3:]) & sessionStatus
	case p[0] == 0x00 || p[0] == 0xfe: // OK: affected rows, last insert id, status
		if st, ok := okPacketStatus(p); ok {
			sess.status = st & sessionStatus
		}
	}
}

// sendFailed handles a failed Send and reports whether the session goes on.
func (sess *mysqlSession) sendFailed(err error) bool {
	switch {
	case errors.Is(err, link.ErrTerminated):
		return false
	case errors.Is(err, link.ErrQueueTimeout):
		return sess.queueTimeout()
	}
	sess.failed(err)
	return false
}

// queueTimeout answers a command no origin connection was free for, and keeps the session.
func (sess *mysqlSession) queueTimeout() bool {
	sess.s.m.refusals.WithLabelValues(mysqlwire.ErConCount.Name()).Inc()
	return sess.writeError(mysqlwire.Errorf(mysqlwire.ErConCount))
}

// failed records a pool-side failure as the reason the session ends.
func (sess *mysqlSession) failed(err error) {
	if errors.Is(err, link.ErrOriginEnded) {
		// The origin closed the connection under the session (KILL, a shutdown, wait_timeout).
		// MariaDB sends such a client nothing, not even during a command: its connection just
		// closes, and its driver reports that (go-sql-driver's invalid connection, the CLI's
		// 2013) and reconnects, as it would direct.
		sess.log.Info("the origin closed the connection under the session", "err", err)
		sess.end(nil, true)
		return
	}
	if errors.Is(err, link.ErrOriginLost) {
		sess.log.Warn("origin connection lost", "err", err)
		sess.end(mysqlwire.NewError(mysqlwire.ErNetReadError, "Lost the connection to the origin database"), false)
		return
	}
	sess.log.Debug("session stream ended", "err", err)
}

func (sess *mysqlSession) write(b []byte) bool {
	_, err := sess.nc.Write(b)
	return err == nil
}

// writeError answers the current command with e.
func (sess *mysqlSession) writeError(e *mysqlwire.Error) bool {
	return sess.write(mysqlwire.AppendError(nil, sess.seq, e))
}

// end records why the session ends (the first reason wins), stops the pool side and wakes a
// read of the client, so that the session's goroutine sends the error and everything closes.
// A killed session's client gets no error, as from MySQL.
func (sess *mysqlSession) end(e *mysqlwire.Error, killed bool) {
	sess.fatal.mu.Lock()
	if sess.fatal.e == nil && !sess.fatal.killed {
		sess.fatal.e, sess.fatal.killed = e, killed
	}
	sess.fatal.mu.Unlock()
	sess.current().Close()
	sess.nc.SetReadDeadline(time.Now())
}

// identity returns the session's database, user and stream, for other goroutines.
func (sess *mysqlSession) identity() (db, user string, stream link.Stream) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.db.Name, sess.user, sess.stream
}

func (sess *mysqlSession) current() link.Stream {
	_, _, stream := sess.identity()
	return stream
}

// changeUser answers COM_CHANGE_USER: the edge authenticates the new user itself, then
// starts a fresh pool-side session for it (no state carries over, as with MySQL) in the
// database it names, or the current one. A failure ends the session, as MySQL ends it.
func (sess *mysqlSession) changeUser(ctx context.Context, raw []byte) bool {
	resp, err := mysqlwire.ParseChangeUser(mysqlwire.Payload(raw)[1:], sess.caps)
	if err != nil {
		sess.writeError(mysqlwire.Errorf(mysqlwire.ErHandshake))
		return false
	}
	db := sess.db
	if resp.Database != "" && resp.Database != db.Name {
		d, ok := sess.s.dbs.Load().myByName[resp.Database]
		if !ok {
			e := mysqlwire.Errorf(mysqlwire.ErBadDB, resp.Database)
			sess.s.refuseMySQL(sess.log, e)
			sess.writeError(e)
			return false
		}
		db = d
	}
	read := func() ([]byte, error) {
		p := sess.next()
		return p.raw, p.err
	}
	acc, err := sess.s.mysqlLogin(ctx, db, resp.User)
	if err != nil {
		sess.writeError(mysqlOriginError(err))
		return false
	}
	if err := sess.conn.ChangeUser(&resp, acc, read); err != nil {
		sess.s.refuseMySQL(sess.log, err)
		return false
	}
	if resp.Collation == 0 {
		resp.Collation = sess.conn.Response.Collation
	}
	status := sess.status
	if profile, err := sess.s.cfg.Transport.Profile(ctx, db.origin()); err == nil {
		status = mysqlProfile(profile, db.AllowLocalInfile).status
	}
	params := withPasswordHash(mysqlParams(&resp, sess.caps, sess.ext), sess.conn.PasswordHash)
	stream, err := sess.s.cfg.Transport.Open(ctx, db.origin(), params)
	if err != nil {
		sess.log.Warn("opening the session on the pool side failed", "err", err)
		sess.conn.Fail(mysqlOriginError(err))
		return false
	}
	sess.mu.Lock()
	old := sess.stream
	sess.db, sess.user, sess.stream, sess.params = db, resp.User, stream, params
	sess.mu.Unlock()
	old.Close()
	sess.status, sess.infile = status, false
	sess.mc, sess.state = sess.s.newMySQLCache(db, resp.User, sess.caps, sess.ext, resp.Collation, stream.Caps())
	sess.log = sess.s.log.With("client", sess.nc.RemoteAddr().String(), "protocol", "mysql", "db", db.Name, "user", resp.User)
	return sess.conn.Finish(sess.status) == nil
}

// sendFatal writes the recorded reason the session ends, if any.
func (sess *mysqlSession) sendFatal() {
	sess.fatal.mu.Lock()
	e, killed := sess.fatal.e, sess.fatal.killed
	sess.fatal.mu.Unlock()
	if e == nil || killed {
		return
	}
	sess.s.m.refusals.WithLabelValues(e.Code.Name()).Inc()
	sess.nc.SetWriteDeadline(time.Now().Add(time.Second))
	sess.writeError(e)
}

package mysqlpool

import (
	"context"
	"errors"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// Recv appends the next response packets for the client to dst. It blocks until there is
// something to send, and returns as soon as the origin has nothing more buffered so that rows
// reach the client without delay.
func (s *Session) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := len(dst)
	for {
		if s.reply != nil {
			dst = append(dst, s.reply...)
			s.reply = nil
			return dst, nil
		}
		if s.closed {
			if c := s.conn; c != nil && !s.sending && !s.reading {
				// Close found this Recv reading and put a deadline on c to wake it, but the
				// read finished first: c comes back here, retired, since the deadline (and
				// maybe half an answer) stays on it.
				s.conn = nil
				c.retire = true
				s.p.release(c)
			}
			return dst, link.ErrClosed
		}
		c := s.conn
		if !s.busy || s.infile || c == nil {
			if len(dst) > start {
				return dst, nil
			}
			s.wake.Wait()
			continue
		}
		if n := len(dst) - start; n >= flushAt || n > 0 && c.r.Buffered() == 0 {
			return dst, nil
		}
		s.reading = true
		s.mu.Unlock()
		var at int
		var err error
		dst, at, err = c.readPacket(dst)
		s.mu.Lock()
		s.reading = false
		if err != nil || s.closed {
			// Closed while reading: Close left c to this Recv (readFailed retires it), even
			// when the read finished before Close's deadline could stop it.
			return dst, s.readFailed(c, err)
		}
		first := s.parse.st == sFirst && !s.parse.cont
		before, afterDefs := s.parse.st, s.parse.afterDefs
		if err := s.parse.feed(dst[at:]); err != nil {
			return dst[:at-4], s.readFailed(c, err)
		}
		if c.deprecateEOF != s.deprecateEOF {
			dst, at = s.translate(c, dst, at, before, afterDefs)
		} else if s.shift != 0 {
			dst[at-1] += s.shift
		}
		if first && s.cmd == mysql.COM_STMT_PREPARE && !s.parse.failed {
			// The client sees the session's statement id, never the origin's.
			s.next++
			copy(dst[at+1:], le32(s.next))
		}
		if s.parse.infile {
			s.infile = true
			s.parse.infile = false
			return dst, nil
		}
		if s.parse.done() {
			s.finishCommand(c)
			return dst, nil
		}
	}
}

// readFailed handles a failed read of the origin: the end of the session, or a broken or
// misbehaving origin connection. s.mu is held.
func (s *Session) readFailed(c *originConn, err error) error {
	s.busy, s.infile = false, false
	if s.closed {
		// Close interrupted the read with a deadline.
		s.conn = nil
		c.retire = true
		s.p.release(c)
		return link.ErrClosed
	}
	c.broken = true
	s.conn = nil
	s.p.release(c)
	if errors.Is(err, errMalformed) {
		s.log.Warn("malformed answer from the origin; the session ends", "cmd", s.cmd)
	} else {
		s.log.Warn("origin connection lost", "err", err)
	}
	return originLost(err)
}

// finishCommand applies what the command that just ended did to the session. s.mu is held.
func (s *Session) finishCommand(c *originConn) {
	s.busy = false
	s.routeEnded()
	p := &s.parse
	if p.failed || p.warnings > 0 {
		c.diagSession = s
	}
	if p.hasStatus {
		s.status, c.status = p.status, p.status
	}
	if p.insertID != 0 {
		s.lastInsertID, s.idLease = p.insertID, s.leases
	}
	n := len(s.effects)
	if p.failed {
		n = min(n, p.results)
	}
	switch s.cmd {
	case mysql.COM_STMT_PREPARE:
		s.last = 0
		if !p.failed {
			s.notePrepared(c, p)
		}
	case mysql.COM_STMT_EXECUTE:
		s.setCursor(s.st, p.cursor)
	case mysql.COM_STMT_FETCH:
		if p.lastRow {
			s.setCursor(s.st, false)
		}
	case mysql.COM_STMT_RESET:
		s.setCursor(s.st, false)
	case mysql.COM_SET_OPTION:
		if !p.failed {
			c.key = s.key // it now answers as connections with the session's key do
		}
	case mysql.COM_RESET_CONNECTION:
		if !p.failed {
			c.state, c.dirty = "", false
			clear(c.prepared)
			s.pinned = ""
		}
	}
	// After warnings the client may ask SHOW WARNINGS, after SQL_CALC_FOUND_ROWS for
	// FOUND_ROWS(): both answer about the last statement on the connection, so the session
	// keeps it for one more command, if that comes soon: a client that goes quiet must not
	// starve the others. A command that ran under such a hold earns no new one, so a client
	// whose every statement warns still lets a waiting client in between two of them.
	held := s.holdNext
	s.holdNext, s.holdTx = p.warnings > 0, false
	catalog := false
	for _, e := range s.effects[:n] {
		s.holdNext = s.holdNext || e.Hold
		s.holdTx = s.holdTx || e.HoldTx
		catalog = catalog || e.Catalog
		s.apply(c, e)
	}
	if catalog {
		// Before the answer's last packet goes out: no read cached after it is kept by the
		// old relations.
		s.p.catalogChanged()
	}
	if held {
		s.holdNext = false
	}
	if s.holdNext {
		if s.holdTimer == nil {
			s.holdTimer = time.AfterFunc(holdFor, s.endHold)
		} else {
			s.holdTimer.Reset(holdFor)
		}
	}
	s.maybeRelease()
}

// notePrepared follows a COM_STMT_PREPARE the origin answered: the session's statement, under
// the id the client now holds, and the origin connection's (closing one it held for the same
// text under another id).
func (s *Session) notePrepared(c *originConn, p *parser) {
	s.last = s.next
	st := &stmt{id: s.next, sql: s.prepSQL, db: c.db, key: c.db + "\x00" + s.prepSQL,
		params: p.prepParams, effects: classify.AppendMySQLEffects(nil, []byte(s.prepSQL))}
	st.lastIDName, _ = classify.MySQLLastInsertIDQuery([]byte(st.sql))
	s.stmts[st.id] = st
	s.p.stmts.add(st.key)
	if old := c.prepared[st.key]; old != nil && old.id != p.prepID {
		c.write(appendCommand(nil, mysql.COM_STMT_CLOSE, le32(old.id)))
		delete(c.prepared, st.key)
	}
	c.lastUse++
	c.prepared[st.key] = &originStmt{id: p.prepID, lastUse: c.lastUse}
}

// holdFor is how long a session keeps its connection for a question about its last statement.
// A variable for tests on a loaded machine.
var holdFor = 250 * time.Millisecond

// endHold gives up the connection kept for a question that did not come.
func (s *Session) endHold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holdNext && !s.busy && !s.sending {
		s.holdNext = false
		s.maybeRelease()
	}
}

// apply records one statement's effect on the session and on c. s.mu is held.
func (s *Session) apply(c *originConn, e classify.MySQLEffect) {
	if e.Zero() {
		return
	}
	if e.Use != "" {
		s.db, c.db = e.Use, e.Use
	}
	if len(e.Sets) > 0 {
		s.state.Apply(e.Sets)
		c.state = s.state.Key()
	}
	for _, v := range e.Vars {
		found := false
		for _, x := range s.vars {
			found = found || x == v
		}
		if !found {
			s.vars = append(s.vars, v)
		}
	}
	if s.p.noReset.Load() && e.Pin == "" && (e.Use != "" || len(e.Sets) > 0 || len(e.Vars) > 0 || e.Dirty) {
		e.Pin = "no_reset"
	}
	if e.Pin != "" {
		s.pin(e.Pin)
	}
	if e.Dirty {
		c.dirty = true
	}
	if e.XA != 0 {
		s.xa = e.XA > 0
	}
}

// pin ties the session to c until it ends. s.mu is held.
func (s *Session) pin(reason string) {
	if s.pinned != "" {
		return
	}
	s.pinned = reason
	s.p.cfg.Metrics.slots.Pin(s.p.cfg.Name, reason)
	s.log.Debug("session pinned to its origin connection", "reason", reason)
}

// sendInfile forwards the client's LOAD DATA LOCAL file packets; the empty packet ends the file
// and the origin's answer follows.
func (s *Session) sendInfile(frames []byte) error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return link.ErrClosed
	}
	end := false
	for b := frames; len(b) >= 4; {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if n == 0 {
			end = true
		}
		if len(b) < 4+n {
			return errors.New("mysqlpool: truncated packet from the edge")
		}
		b = b[4+n:]
	}
	if err := c.write(frames); err != nil {
		return originLost(err)
	}
	if end {
		s.mu.Lock()
		s.infile = false
		s.wake.Broadcast()
		s.mu.Unlock()
	}
	return nil
}

// Pending reports whether the answer to the last command is not completely received yet. It
// is false while the origin waits for a LOAD DATA LOCAL file from the client.
func (s *Session) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reply != nil || s.busy && !s.infile
}

// Pinned is always false: a MySQL origin never speaks unasked.
func (s *Session) Pinned() bool { return false }

// Skip notes commands the edge (or the tunnel's pool end) answered itself: statements they
// close are forgotten, long data buffered for a statement it executed is dropped, and the
// parameter types an execute sent are kept, for the executes that rely on them.
func (s *Session) Skip(frames []byte) {
	for len(frames) > 0 {
		cmd, rest, err := nextCommand(frames)
		if err != nil {
			return
		}
		frames = rest
		switch cmd.code {
		case mysqlwire.ComRegisterStmt:
			s.registerStmt(cmd.body)
		case mysql.COM_STMT_CLOSE:
			s.closeStmt(cmd)
		case mysql.COM_STMT_EXECUTE:
			s.mu.Lock()
			if st := s.stmtOf(cmd); st != nil {
				st.dropLongData()
				st.noteTypes(cmd.body)
			}
			s.mu.Unlock()
		}
	}
}

// registerStmt takes over a statement the client prepared on the pool side this session
// replaces (mysqlwire.ComRegisterStmt), under the same id; it is prepared on the origin when
// next executed. Ids this session hands out from then on come after it.
func (s *Session) registerStmt(body []byte) {
	id, params, types, db, sql, ok := mysqlwire.ParseStmtRegistration(body)
	if !ok || id == 0 || id == 0xffffffff {
		return
	}
	if db == "" {
		db = s.firstDB
	}
	st := &stmt{id: id, sql: sql, db: db, key: db + "\x00" + sql, params: uint16(params), effects: classify.AppendMySQLEffects(nil, []byte(sql))}
	st.lastIDName, _ = classify.MySQLLastInsertIDQuery([]byte(sql))
	if len(types) > 0 {
		st.setTypes(types)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.stmts[id]; old != nil {
		s.p.stmts.drop(old.key)
	}
	s.stmts[id] = st
	s.p.stmts.add(st.key)
	s.next = max(s.next, id)
}

// Cancel stops the command the session is running, if any, with KILL QUERY on a connection of
// its own. The lease is held until the origin has taken the request, so the kill can't land on
// another client's query.
func (s *Session) Cancel(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if c == nil || !s.busy {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dc := &s.p.dc
	if c.home != nil {
		dc = &c.home.dc // a replica's
	}
	return c.kill(ctx, dc)
}

// Close ends the session. A connection it leaves clean goes back to the pool; one mid-command
// or mid-transaction is closed; one holding pinned state is reset first.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.dropStmts()
	s.wake.Broadcast()
	if s.holdTimer != nil {
		s.holdTimer.Stop()
	}
	c := s.conn
	switch {
	case c == nil:
	case s.reading:
		// Recv is blocked on c: wake it; it hands c back.
		c.nc.SetReadDeadline(time.Now())
	case s.sending:
		// Send is using c: interrupt it; it hands c back when it returns. The deadline
		// stays on c, so c is not for anyone else.
		c.retire = true
		c.nc.SetDeadline(time.Now())
	default:
		s.finishClose(c)
	}
	return nil
}

// Caps: a pool session is the pool end itself, in the edge's process: no other edge to tell,
// no cache of its own, no lease; with replicas (replica.go), it routes reads.
func (s *Session) Caps() link.Caps {
	if s.p.replica.Load() != nil {
		return link.Caps{Replica: s} // replica.go
	}
	return link.Caps{}
}

package mysqlpool

import (
	"context"
	"encoding/hex"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/charset"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
)

// originErr is an ERR packet's payload from the origin, kept to pass on to the client.
type originErr []byte

// withSeq returns the ERR as a packet with sequence id seq.
func (e originErr) withSeq(seq byte) []byte {
	b, at := beginPacket(nil, seq)
	return finishPacket(append(b, e...), at)
}

// ready leases a connection if the session has none and makes it carry the session's state
// (sync). A connection just taken from the pool that turns out dead is dropped and another
// taken: nothing of the client's command has gone out yet, so that is no retry of it. A failure
// of the origin to take the state comes back as the origin's ERR.
func (s *Session) ready(ctx context.Context) (*originConn, originErr, error) {
	s.leaveReplica()
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		c := s.conn
		s.mu.Unlock()
		fresh := c == nil
		if fresh {
			var err error
			if c, err = s.acquireRouted(ctx); err != nil {
				return nil, nil, err
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				s.p.release(c)
				return nil, nil, link.ErrClosed
			}
			s.conn = c
			s.leases++
			s.mu.Unlock()
		}
		failure, err := s.sync(c, fresh)
		if err != nil && fresh && attempt < 3 {
			s.log.Debug("dropping a dead idle origin connection", "err", err)
			s.mu.Lock()
			s.conn = nil
			c.broken = true
			s.p.release(c)
			s.mu.Unlock()
			continue
		}
		return c, failure, err
	}
}

// sync makes c carry the session's state: it reads answers owed from the connection's last
// release, resets it when it holds another session's state, selects the session's database and
// replays its settings, in one round trip. (Slots has checked a connection fresh from the
// pool for a close by the origin: Dead.)
func (s *Session) sync(c *originConn, fresh bool) (originErr, error) {
	if err := c.drain(s.pbuf[:0]); err != nil {
		return nil, originLost(err)
	}
	s.mu.Lock()
	db, key, stmts := s.db, s.state.Key(), s.state.Statements()
	s.mu.Unlock()

	var b []byte
	steps := s.steps[:0]
	// A connection the session already holds carries its own state, whatever it did there
	// (a reset now would even roll back its transaction); a fresh one may carry another's.
	if fresh && (c.dirty || c.state != "" && c.state != key) {
		b = appendCommand(b, mysql.COM_RESET_CONNECTION, nil)
		c.state, c.dirty = "", false
		clear(c.prepared)
		steps = append(steps, mysql.COM_RESET_CONNECTION)
	}
	if db != "" && c.db != db {
		b = appendCommand(b, mysql.COM_INIT_DB, []byte(db))
		steps = append(steps, mysql.COM_INIT_DB)
	}
	if key != "" && c.state != key {
		for _, q := range stmts {
			b = appendCommand(b, mysql.COM_QUERY, []byte(q))
			steps = append(steps, mysql.COM_QUERY)
		}
	}
	s.steps = steps
	if len(steps) == 0 {
		return nil, nil
	}
	if err := c.write(b); err != nil {
		return nil, originLost(err)
	}
	var failure originErr
	var p parser
	settled := true
	for _, step := range steps {
		kind := rOne
		if step == mysql.COM_QUERY {
			kind = rQuery
		}
		pl, err := c.readResponse(&p, kind, s.pbuf[:0])
		if err != nil {
			return nil, originLost(err)
		}
		switch {
		case p.failed && failure == nil:
			failure = append(originErr(nil), pl...)
			fallthrough
		case p.failed:
			if step != mysql.COM_INIT_DB {
				c.dirty = true
				settled = false
			}
		case step == mysql.COM_INIT_DB:
			c.db = db
		}
	}
	if settled && key != "" && len(stmts) > 0 {
		c.state = key
	}
	return failure, nil
}

// prepared returns st's statement on c, preparing it there first if needed, in the database
// it was first prepared in (where its table names resolve).
func (s *Session) prepared(c *originConn, st *stmt) (*originStmt, originErr, error) {
	c.lastUse++
	if os := c.prepared[st.key]; os != nil {
		os.lastUse = c.lastUse
		return os, nil, nil
	}
	b := s.p.stmts.room(c, s.p.stmts.sweep(c, nil))
	elsewhere := st.db != c.db && st.db != ""
	if elsewhere {
		b = appendCommand(b, mysql.COM_INIT_DB, []byte(st.db))
	}
	b = appendCommand(b, mysql.COM_STMT_PREPARE, []byte(st.sql))
	if elsewhere {
		b = appendCommand(b, mysql.COM_INIT_DB, []byte(c.db))
	}
	if err := c.write(b); err != nil {
		return nil, nil, originLost(err)
	}
	kinds := []respKind{rPrepare}
	if elsewhere {
		kinds = []respKind{rOne, rPrepare, rOne}
	}
	var failure originErr
	var os *originStmt
	var p parser
	for _, kind := range kinds {
		pl, err := c.readResponse(&p, kind, s.pbuf[:0])
		if err != nil {
			return nil, nil, originLost(err)
		}
		switch {
		case p.failed && failure == nil:
			failure = append(originErr(nil), pl...)
			if kind == rOne {
				c.db = "" // not sure where it is: select again before next use
			}
		case p.failed:
		case kind == rPrepare:
			os = &originStmt{id: p.prepID, lastUse: c.lastUse}
			c.prepared[st.key] = os
		}
	}
	if failure != nil {
		return nil, failure, nil
	}
	return os, nil, nil
}

// evictOldest appends a COM_STMT_CLOSE for c's least recently used statement and forgets it.
func (c *originConn) evictOldest(b []byte) []byte {
	var oldest string
	var at uint64
	for sql, os := range c.prepared {
		if oldest == "" || os.lastUse < at {
			oldest, at = sql, os.lastUse
		}
	}
	b = appendCommand(b, mysql.COM_STMT_CLOSE, le32(c.prepared[oldest].id))
	delete(c.prepared, oldest)
	return b
}

// maybeRelease gives the connection back to the pool when the session holds it for nothing:
// no answer due, no transaction (or autocommit off), no open cursor, not pinned. s.mu is held.
func (s *Session) maybeRelease() {
	c := s.conn
	if c == nil || s.sending || s.reading || s.busy || s.infile || s.pinned != "" || s.xa || s.holdNext || s.holdTx || s.closed {
		return
	}
	if c.status&statusInTrans != 0 || c.status&statusAutocommit == 0 {
		return
	}
	if s.cursors > 0 {
		return
	}
	if len(s.vars) > 0 {
		s.readBack(c)
		if s.pinned != "" {
			return
		}
	}
	if c.dirty && !c.broken {
		c.sendReset()
	}
	s.conn = nil
	s.p.release(c)
}

// finishClose hands c back after the session closed. s.mu is held.
func (s *Session) finishClose(c *originConn) {
	s.conn = nil
	switch {
	case s.busy || s.infile || s.sending || s.xa || c.r.Buffered() > 0 ||
		c.status&statusInTrans != 0 || c.status&statusAutocommit == 0:
		// Mid-command or mid-transaction: nobody may inherit it.
		c.retire = true
	case s.p.noReset.Load() && (s.pinned != "" || c.dirty || c.state != "" || len(s.vars) > 0):
		c.retire = true // the origin can't reset it
	case s.pinned != "" || c.dirty || len(s.vars) > 0:
		// Pinned state, or variables never read back: reset before anyone else uses it.
		c.sendReset()
	}
	s.p.release(c)
}

// readBack reads the values of user variables the session assigned from expressions, so that
// they can be replayed as constants on its next connection. s.mu is held: it runs when the
// connection goes back, once per lease that assigned variables.
func (s *Session) readBack(c *originConn) {
	vars := s.vars
	s.vars = nil
	var q strings.Builder
	q.WriteString("SELECT ")
	for i, v := range vars {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(classify.QuoteMySQLUserVar(v))
	}
	if err := c.write(appendCommand(nil, mysql.COM_QUERY, []byte(q.String()))); err != nil {
		return
	}
	var p parser
	p.reset(rQuery, c.deprecateEOF)
	type column struct {
		typ     byte
		charset uint16
	}
	var cols []column
	var row []byte
	for !p.done() {
		var at int
		var err error
		s.rbuf, at, err = c.readPacket(s.rbuf[:0])
		if err != nil {
			c.broken = true
			return
		}
		pl := s.rbuf[at:]
		before := p.st
		if err := p.feed(pl); err != nil || p.infile {
			c.broken = true
			return
		}
		switch {
		case before == sColumns:
			cols = append(cols, parseColumnType(pl))
		case before == sRows && p.st == sRows && row == nil:
			row = append([]byte(nil), pl...)
		}
	}
	if p.hasStatus {
		c.status = p.status
	}
	if p.failed || len(cols) != len(vars) || row == nil {
		// The values are lost; make sure no one else sees them.
		c.dirty = true
		return
	}
	sets := make([]classify.MySQLAssignment, 0, len(vars))
	for i, v := range vars {
		val, n := lenencString(row)
		if n == 0 {
			c.dirty = true
			return
		}
		row = row[n:]
		sets = append(sets, classify.MySQLUserVar(v, literal(val, n == 1 && val == nil, cols[i].typ, cols[i].charset)))
	}
	size := 0
	for _, st := range sets {
		size += len(st.Text)
	}
	if size > maxReplay {
		// Too large to replay on every lease: the values stay where they are.
		s.pin("user_variables")
		return
	}
	s.state.Apply(sets)
	c.state = s.state.Key()
}

// maxReplay bounds the user variables read back for replay; larger ones pin the session.
const maxReplay = 64 << 10

// parseColumnType reads the type and character set of a column definition.
func parseColumnType(pl []byte) (col struct {
	typ     byte
	charset uint16
}) {
	b := pl
	for range 6 { // catalog, schema, table, org_table, name, org_name
		_, n := lenencString(b)
		if n == 0 {
			return col
		}
		b = b[n:]
	}
	if len(b) >= 8 && b[0] == 0x0c {
		col.charset = uint16(b[1]) | uint16(b[2])<<8
		col.typ = b[7]
	}
	return col
}

// lenencString reads a length-encoded string (or the NULL marker 0xfb, giving nil and size 1).
func lenencString(b []byte) ([]byte, int) {
	if len(b) > 0 && b[0] == 0xfb {
		return nil, 1
	}
	v, n := lenenc(b)
	if n == 0 || uint64(len(b)-n) < v {
		return nil, 0
	}
	return b[n : n+int(v)], n + int(v)
}

// literal writes a value read back as SQL that evaluates to the same value and type.
func literal(val []byte, null bool, typ byte, cs uint16) string {
	if null {
		return "NULL"
	}
	switch typ {
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_INT24,
		mysql.MYSQL_TYPE_NEWDECIMAL:
		if isNumber(val) {
			return string(val)
		}
	}
	h := "X'" + hex.EncodeToString(val) + "'"
	if cs == 63 {
		return h
	}
	if col, err := charset.GetCollationByID(int(cs)); err == nil {
		return "CONVERT(" + h + " USING " + col.CharsetName + ")"
	}
	return h
}

func isNumber(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return false
		}
	}
	return true
}

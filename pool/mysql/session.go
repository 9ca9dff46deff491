package mysqlpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// flushAt is how much Recv gathers before returning even if the origin has more buffered.
const flushAt = 64 << 10

// errBusy means the edge sent a command while the answer to the last one was still due.
var errBusy = errors.New("mysqlpool: command sent before the previous answer was received")

// Session is the pool side of one client session. See the package documentation for the
// exchange and the concurrency contract.
type Session struct {
	p            *Pool
	log          *slog.Logger
	key          connKey
	caps         uint32 // negotiated with the client
	deprecateEOF bool

	mu      sync.Mutex
	wake    *sync.Cond  // a command was sent, or the session closed
	conn    *originConn // leased origin connection, or nil
	closed  bool
	sending bool // Send is using conn
	reading bool // Recv is blocked reading conn

	// The command in flight.
	busy    bool   // its answer is (partly) due from the origin
	infile  bool   // the origin waits for the client's LOAD DATA LOCAL file
	reply   []byte // the answer the pool made up itself, due to the client
	cmd     byte
	parse   parser
	shift   byte                   // added to the sequence ids of the answer's packets: translation adds or drops some
	effects []classify.MySQLEffect // of its statements, applied as they succeed
	st      *stmt                  // the statement it prepares, executes or fetches from
	prepSQL string                 // COM_STMT_PREPARE: the statement text
	// ownDiag is an error the pool answered in MariaDB's place (an unknown statement id or
	// command): the origin raises it before the session's next command, so that SHOW WARNINGS
	// lists it as MariaDB's own diagnostics would (diagnostics.go).
	ownDiag *sqlError

	status uint16 // server status after the last answer
	// lastInsertID is the id the session's last INSERT generated, as its OK packet said: what
	// LAST_INSERT_ID() returns on whichever connection that ran on.
	lastInsertID uint64
	idLease      uint64 // the lease it was generated on
	leases       uint64 // leases taken so far
	pinned       string // the feature that ties the session to conn for good, or ""
	xa           bool   // an XA transaction is open on conn
	holdNext     bool   // the next command may ask about the last: keep conn for it
	holdTx       bool   // the next command starts a transaction SET TRANSACTION shaped
	holdTimer    *time.Timer

	db      string                     // current database
	firstDB string                     // the database the session started in
	state   sessionstate.MySQLSettings // settings to carry
	vars    []string                   // user variables assigned values the pool has not read yet
	stmts   map[uint32]*stmt
	next    uint32 // last statement id handed out
	// last is the statement id 0xffffffff names: the one just prepared, 0 after a prepare
	// failed or that statement was closed (MariaDB's thd->last_stmt).
	last uint32
	// cursors counts statements with a cursor open on conn, which keeps the lease.
	cursors int
	route   routing // replica reads (replica.go)

	wbuf  []byte // owned by Send
	pbuf  []byte // the pool's own answers, read by Send
	steps []byte // the commands sync sends, by Send
	rbuf  []byte // the pool's own answers, read under mu
}

// stmt is one of the client's prepared statements.
type stmt struct {
	id  uint32 // what the client calls it
	sql string
	db  string // the database it was prepared in
	// lastIDName is the column name when the statement is SELECT LAST_INSERT_ID().
	lastIDName string
	key        string // db and sql: its name in originConn.prepared
	params     uint16
	effects    []classify.MySQLEffect
	longData   [][]byte // COM_STMT_SEND_LONG_DATA packets to replay before the next execute
	types      []byte   // parameter types the client last sent
	typesGen   uint64   // bumped when types change: an origin statement bound at another holds others
	cursor     bool     // a cursor is open on the session's connection
}

// NewSession starts the pool side of a client session. params are the edge's Open parameters:
// user, database, capabilities (negotiated with the client), collation.
func (p *Pool) NewSession(ctx context.Context, params map[string]string) *Session {
	caps, _ := strconv.ParseUint(params["capabilities"], 10, 32)
	coll, _ := strconv.ParseUint(params["collation"], 10, 8)
	if !p.cfg.AllowLoadLocal {
		caps &^= uint64(mysql.CLIENT_LOCAL_FILES)
	}
	s := &Session{
		p:            p,
		log:          p.log,
		key:          makeKey(uint32(caps), uint8(coll)) | extKey(params["ext_capabilities"]),
		caps:         uint32(caps),
		deprecateEOF: caps&uint64(mysql.CLIENT_DEPRECATE_EOF) != 0,
		status:       statusAutocommit,
		db:           p.dc.db,
		stmts:        make(map[uint32]*stmt),
	}
	if db := params["database"]; db != "" {
		s.db = db
	}
	s.firstDB = s.db
	s.wake = sync.NewCond(&s.mu)
	return s
}

// extKey is keyExtMetadata when the Open parameter ext_capabilities asks for extended
// metadata.
func extKey(param string) connKey {
	if v, err := strconv.ParseUint(param, 10, 32); err == nil && uint32(v)&extMetadata != 0 {
		return keyExtMetadata
	}
	return 0
}

// command is one client command within a Send: raw packets, headers included.
type command struct {
	raw  []byte
	code byte
	body []byte // the first packet's payload after the command byte
	seq  byte   // sequence id of its last packet
}

// nextCommand splits the first command off frames.
func nextCommand(frames []byte) (command, []byte, error) {
	var c command
	i := 0
	for {
		if len(frames)-i < 4 {
			return c, nil, errors.New("mysqlpool: truncated packet from the edge")
		}
		n := int(frames[i]) | int(frames[i+1])<<8 | int(frames[i+2])<<16
		if len(frames)-i-4 < n {
			return c, nil, errors.New("mysqlpool: truncated packet from the edge")
		}
		if i == 0 {
			if n == 0 {
				return c, nil, errors.New("mysqlpool: empty command from the edge")
			}
			c.code = frames[4]
			c.body = frames[5 : 4+n]
		}
		c.seq = frames[i+3]
		i += 4 + n
		if n < maxPayload {
			c.raw = frames[:i]
			return c, frames[i:], nil
		}
	}
}

// Send forwards the packets of one client command (and any COM_STMT_SEND_LONG_DATA or
// COM_STMT_CLOSE before it). It leases an origin connection when the session has none and
// makes it the session's own (state, statements) before writing. It returns ErrTerminated after
// COM_QUIT, an error wrapping link.ErrQueueTimeout when no connection became free in time (the
// session goes on), and any other error ends the session.
func (s *Session) Send(ctx context.Context, frames []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return link.ErrClosed
	}
	if s.infile {
		s.mu.Unlock()
		return s.sendInfile(frames)
	}
	if s.busy || s.reply != nil {
		s.mu.Unlock()
		return errBusy
	}
	s.sending = true
	s.mu.Unlock()
	err := s.send(ctx, frames)
	s.mu.Lock()
	s.sending = false
	switch c := s.conn; {
	case c == nil:
	case s.closed:
		s.finishClose(c)
	case c.broken:
		s.conn = nil
		s.p.release(c)
	default:
		s.maybeRelease()
	}
	s.wake.Broadcast()
	s.mu.Unlock()
	return err
}

func (s *Session) send(ctx context.Context, frames []byte) error {
	for len(frames) > 0 {
		cmd, rest, err := nextCommand(frames)
		if err != nil {
			return err
		}
		frames = rest
		switch cmd.code {
		case mysql.COM_QUIT:
			return link.ErrTerminated
		case mysql.COM_STMT_SEND_LONG_DATA:
			s.mu.Lock()
			if st := s.stmtOf(cmd); st != nil {
				st.longData = append(st.longData, append([]byte(nil), cmd.raw...))
			}
			s.mu.Unlock()
			continue
		case mysql.COM_STMT_CLOSE:
			s.closeStmt(cmd)
			continue
		}
		if len(frames) > 0 {
			return errors.New("mysqlpool: more than one command in one Send")
		}
		return s.sendCommand(ctx, cmd)
	}
	return nil
}

// stmtOf returns the session statement a COM_STMT_* command names, or nil. The id 0xffffffff
// names the last statement prepared (MariaDB's prepare-and-execute in one write). s.mu is held.
func (s *Session) stmtOf(cmd command) *stmt {
	if len(cmd.body) < 4 {
		return nil
	}
	id := uint32(cmd.body[0]) | uint32(cmd.body[1])<<8 | uint32(cmd.body[2])<<16 | uint32(cmd.body[3])<<24
	if id == 0xffffffff {
		id = s.last
	}
	return s.stmts[id]
}

// closeStmt forgets a statement. The origin keeps it prepared on the connection for the next
// session that prepares the same text, unless it has a cursor open.
func (s *Session) closeStmt(cmd command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stmtOf(cmd)
	if st == nil {
		return
	}
	delete(s.stmts, st.id)
	s.p.stmts.drop(st.key)
	if s.last == st.id {
		s.last = 0
	}
	if c := s.conn; c != nil {
		var b []byte
		if os := c.prepared[st.key]; os != nil && st.cursor {
			delete(c.prepared, st.key)
			b = appendCommand(b, mysql.COM_STMT_CLOSE, le32(os.id))
		}
		// Freed on the origin at once when no client uses it any more, as direct.
		if b = s.p.stmts.sweep(c, b); len(b) > 0 {
			c.write(b)
		}
	}
	s.setCursor(st, false)
}

// dropStmts forgets all the session's statements. s.mu is held.
func (s *Session) dropStmts() {
	for _, st := range s.stmts {
		s.p.stmts.drop(st.key)
	}
	clear(s.stmts)
	s.last = 0
}

// le32At reads the little-endian uint32 at the start of b (0 when b is shorter).
func le32At(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

// ownStatus are the status flags of an answer the pool makes up itself: those that describe
// the session (transaction, autocommit, backslash escapes, ANSI quotes), not the ones the last statement's
// answer carried about itself (index use, cursor, more results...), as the origin's next
// answer would not repeat them. s.mu is held or not needed.
func (s *Session) ownStatus() uint16 {
	return s.status & mysqlwire.SessionStatus
}

// answer makes up the answer to the command in flight. s.mu is not held.
func (s *Session) answer(b []byte) {
	s.mu.Lock()
	s.reply = append(s.reply[:0], b...)
	s.mu.Unlock()
}

func (s *Session) answerErr(cmd command, e *sqlError) { s.answer(appendERR(nil, cmd.seq+1, e)) }

// sendCommand handles one command that draws an answer: what kind of answer it draws (plan),
// a connection carrying the session's state (lease), then the command on it (write). Each
// step may answer the command itself instead (answered).
func (s *Session) sendCommand(ctx context.Context, cmd command) error {
	s.st, s.prepSQL, s.effects = nil, "", s.effects[:0]
	kind, cmd, answered := s.plan(cmd)
	if answered {
		return nil
	}
	c, answered, err := s.lease(ctx, cmd)
	if err != nil || answered {
		return err
	}
	return s.writeCommand(c, cmd, kind)
}

// plan says what kind of answer cmd draws, and notes what it will change of the session. It
// answers what the session can answer alone (answered); the command it returns is the one to
// send (COM_CHANGE_USER goes out as COM_RESET_CONNECTION).
func (s *Session) plan(cmd command) (kind respKind, _ command, answered bool) {
	switch cmd.code {
	case mysql.COM_QUERY:
		if name, ok := classify.MySQLLastInsertIDQuery(cmd.body); ok {
			s.mu.Lock()
			if s.conn == nil || s.idLease != s.leases {
				// The connection the answer would come from may hold another session's
				// LAST_INSERT_ID(): the session's own is known.
				s.reply = appendLastInsertID(s.reply[:0], cmd.seq+1, name, s.lastInsertID, s.ownStatus(), s.deprecateEOF, s.key.extMetadata())
				s.mu.Unlock()
				return 0, cmd, true
			}
			s.mu.Unlock()
		}
		s.effects = classify.AppendMySQLEffects(s.effects, cmd.body)
		return rQuery, cmd, false
	case mysql.COM_INIT_DB:
		s.effects = append(s.effects, classify.MySQLEffect{Use: string(cmd.body)})
		return rOne, cmd, false
	case mysql.COM_PING:
		return rOne, cmd, s.okWithoutLease(cmd)
	case mysql.COM_STATISTICS, mysql.COM_DEBUG, mysql.COM_PROCESS_KILL:
		return rOne, cmd, false
	case mysql.COM_PROCESS_INFO:
		return rQuery, cmd, false
	case mysql.COM_FIELD_LIST:
		return rFieldList, cmd, false
	case mysql.COM_RESET_CONNECTION:
		s.resetState()
		return rOne, cmd, s.okWithoutLease(cmd)
	case mysql.COM_STMT_PREPARE:
		s.prepSQL = string(cmd.body)
		return rPrepare, cmd, false
	case mysql.COM_STMT_EXECUTE, mysql.COM_STMT_FETCH, mysql.COM_STMT_RESET:
		kind, answered := s.planStmt(cmd)
		return kind, cmd, answered
	case mysql.COM_CHANGE_USER:
		return s.planChangeUser(cmd)
	case mysql.COM_SET_OPTION:
		return rOne, cmd, s.planSetOption(cmd)
	}
	s.ownDiag = errUnknownCmd
	s.answerErr(cmd, errUnknownCmd)
	return 0, cmd, true
}

// okWithoutLease answers OK for the session when it holds no connection.
func (s *Session) okWithoutLease(cmd command) bool {
	if s.leased() != nil {
		return false
	}
	s.answer(appendOK(nil, cmd.seq+1, s.ownStatus()))
	return true
}

// planStmt plans COM_STMT_EXECUTE, _FETCH and _RESET of a statement of the session's.
func (s *Session) planStmt(cmd command) (respKind, bool) {
	s.mu.Lock()
	st := s.stmtOf(cmd)
	s.mu.Unlock()
	if st == nil {
		s.ownDiag = unknownStmt(le32At(cmd.body), cmd.code)
		s.answerErr(cmd, s.ownDiag)
		return 0, true
	}
	s.st = st
	switch cmd.code {
	case mysql.COM_STMT_EXECUTE:
		if st.lastIDName != "" && len(cmd.body) > 4 && cmd.body[4] == 0 {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.conn == nil || s.idLease != s.leases {
				// As for the query: the session's own LAST_INSERT_ID().
				s.reply = appendLastInsertIDBinary(s.reply[:0], cmd.seq+1, st.lastIDName, s.lastInsertID, s.ownStatus(), s.deprecateEOF, s.key.extMetadata())
				return 0, true
			}
		}
		return rExecute, false
	case mysql.COM_STMT_FETCH:
		if !st.cursor || s.leased() == nil {
			s.answerErr(cmd, &sqlError{Code: 1421, State: "HY000",
				Message: fmt.Sprintf("The statement (%d) has no open cursor", st.id)})
			return 0, true
		}
		return rFetch, false
	}
	st.dropLongData()
	c := s.leased()
	if c == nil || c.prepared[st.key] == nil {
		s.mu.Lock()
		s.setCursor(st, false)
		s.mu.Unlock()
		s.answer(appendOK(nil, cmd.seq+1, s.ownStatus()))
		return 0, true
	}
	return rOne, false
}

// planChangeUser plans COM_CHANGE_USER. The edge authenticated the user; here it is a fresh
// session: state reset, the database it names (the origin's when none), its character set.
// A leased connection is reset (a transaction rolls back) and released after.
func (s *Session) planChangeUser(cmd command) (respKind, command, bool) {
	db, coll, ok := parseChangeUser(cmd.body, s.caps)
	if !ok {
		s.answerErr(cmd, errChangeUser)
		return 0, cmd, true
	}
	s.resetState()
	s.mu.Lock()
	s.db = s.p.dc.db
	if db != "" {
		s.db = db
	}
	if coll != 0 {
		s.key = makeKey(s.key.caps(), coll) | s.key&keyExtMetadata
	}
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		s.answer(appendOK(nil, cmd.seq+1, s.ownStatus()))
		return 0, cmd, true
	}
	return rOne, command{raw: appendCommand(nil, mysql.COM_RESET_CONNECTION, nil), code: mysql.COM_RESET_CONNECTION, seq: cmd.seq}, false
}

// planSetOption plans COM_SET_OPTION: multi-statements on or off, the session's connections
// are the ones opened (or switched) that way from now on; a held connection switches too.
func (s *Session) planSetOption(cmd command) (answered bool) {
	if len(cmd.body) != 2 || cmd.body[0] > 1 || cmd.body[1] != 0 {
		s.answerErr(cmd, errSetOption)
		return true
	}
	s.mu.Lock()
	caps := s.key.caps() | mysql.CLIENT_MULTI_STATEMENTS
	if cmd.body[0] == 1 {
		caps &^= mysql.CLIENT_MULTI_STATEMENTS
	}
	s.key = makeKey(caps, s.key.collation()) | s.key&keyExtMetadata
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		s.answer(appendEnd(nil, cmd.seq+1, s.ownStatus(), s.deprecateEOF))
		return true
	}
	return false
}

// lease makes a connection the session's for cmd (ready), clearing another session's
// diagnostics from it before a statement that shows them. A failure the client should hear of
// is answered (answered); an error ends the session's command.
func (s *Session) lease(ctx context.Context, cmd command) (*originConn, bool, error) {
	c, failure, err := s.ready(ctx)
	if err == nil && failure == nil && s.ownDiag != nil {
		if err = c.raiseDiagnostics(s.pbuf[:0], s.ownDiag); err == nil {
			c.diagSession, s.ownDiag = s, nil
		}
	}
	if err == nil && failure == nil {
		if cmd.code == mysql.COM_QUERY && c.diagSession != nil && c.diagSession != s && showsDiagnostics(cmd.body) {
			// The connection's diagnostics may be another session's: its statements since
			// then may all have used no table, which leaves them in place.
			if failure, err = c.clearDiagnostics(s.pbuf[:0]); err == nil && failure == nil {
				c.diagSession = nil
			}
		}
	}
	if err != nil {
		if s.leaseFailed(ctx, cmd, err) {
			return nil, true, nil
		}
		return nil, false, err
	}
	if failure != nil {
		// Making the connection the session's failed (its database is gone, say): the
		// client gets the origin's error.
		s.answer(failure.withSeq(cmd.seq + 1))
		return nil, true, nil
	}
	return c, false, nil
}

// leaseFailed answers the client when no connection could be had for cmd and it should hear
// why; false: the error ends the command (a queue timeout, the origin lost, the session done).
func (s *Session) leaseFailed(ctx context.Context, cmd command, err error) (answered bool) {
	switch {
	case errors.Is(err, link.ErrQueueTimeout):
		return false
	case errors.Is(err, link.ErrClosed) && !s.isClosed():
		s.answerErr(cmd, errShutdown) // the pool is closing
	case errors.Is(err, link.ErrOriginLost) || errors.Is(err, link.ErrClosed) || ctx.Err() != nil:
		return false
	case errors.Is(err, pool.ErrNoCredential):
		s.answerErr(cmd, &sqlError{Code: errOriginDown.Code, State: errOriginDown.State,
			Message: "database " + s.p.cfg.Name + ": " + pool.ErrNoCredential.Error()})
	default:
		s.answerErr(cmd, originDownError(err))
	}
	return true
}

// writeCommand sends cmd on c, after closing the statements no client uses any more (no answer
// comes back) and, for a prepare, making room; a statement command goes out with the
// connection's statement id.
func (s *Session) writeCommand(c *originConn, cmd command, kind respKind) error {
	if b := s.p.stmts.sweep(c, nil); len(b) > 0 {
		if err := c.write(b); err != nil {
			return originLost(err)
		}
	}
	s.wbuf = s.wbuf[:0]
	if cmd.code == mysql.COM_STMT_PREPARE {
		s.wbuf = s.p.stmts.room(c, s.wbuf)
	}
	switch cmd.code {
	case mysql.COM_STMT_EXECUTE, mysql.COM_STMT_FETCH, mysql.COM_STMT_RESET:
		os, failure, err := s.prepared(c, s.st)
		if err != nil {
			return err
		}
		if failure != nil {
			s.answer(failure.withSeq(cmd.seq + 1))
			return nil
		}
		if cmd.code == mysql.COM_STMT_EXECUTE {
			for _, ld := range s.st.longData {
				s.wbuf = appendWithID(s.wbuf, ld, os.id)
			}
			s.st.dropLongData()
			s.wbuf = s.appendExecute(s.wbuf, cmd, os)
			s.effects = append(s.effects, s.st.effects...)
		} else {
			s.wbuf = appendWithID(s.wbuf, cmd.raw, os.id)
		}
	default:
		s.wbuf = append(s.wbuf, cmd.raw...)
	}

	s.mu.Lock()
	s.cmd = cmd.code
	s.busy = true
	s.parse.reset(kind, c.deprecateEOF)
	s.shift = 0
	s.mu.Unlock()
	if err := c.write(s.wbuf); err != nil {
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
		return originLost(err)
	}
	if cap(s.wbuf) > 1<<20 {
		s.wbuf = nil
	}
	return nil
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// leased returns the session's connection, if any.
func (s *Session) leased() *originConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// appendWithID appends a COM_STMT_* command with its statement id replaced by id.
func appendWithID(dst, raw []byte, id uint32) []byte {
	at := len(dst)
	dst = append(dst, raw...)
	copy(dst[at+5:], le32(id))
	return dst
}

// noteTypes keeps the parameter types an execute's body carries (new-params-bound 1), as
// appendExecute does for the executes it sends.
func (st *stmt) noteTypes(b []byte) {
	n := int(st.params)
	nb := (n + 7) / 8
	if n > 0 && len(b) >= 9+nb+1+2*n && b[4]&0x08 == 0 && b[9+nb] == 1 {
		st.setTypes(b[9+nb+1 : 9+nb+1+2*n])
	}
}

// setTypes keeps the parameter types the client sent, moving typesGen when they change.
func (st *stmt) setTypes(t []byte) {
	if !bytes.Equal(st.types, t) {
		st.types = append(st.types[:0], t...)
		st.typesGen++
	}
}

// appendExecute appends a COM_STMT_EXECUTE for origin statement os. When the client relies on
// the parameter types it sent before (new-params-bound 0) and the origin statement holds
// another's, the types go in again.
func (s *Session) appendExecute(dst []byte, cmd command, os *originStmt) []byte {
	st := s.st
	b := cmd.body // id(4) flags(1) iterations(4) [null bitmap, bound flag, types, values]
	n := int(st.params)
	nb := (n + 7) / 8
	if n == 0 || len(b) < 9 || b[4]&0x08 != 0 || len(b) < 9+nb+1 || len(cmd.raw) != len(b)+5 {
		// No parameters, query attributes, or more than one packet: as the client sent it.
		os.bound = st
		return appendWithID(dst, cmd.raw, os.id)
	}
	if b[9+nb] == 1 {
		if len(b) >= 9+nb+1+2*n {
			st.setTypes(b[9+nb+1 : 9+nb+1+2*n])
		}
		os.bound, os.boundGen = st, st.typesGen
		return appendWithID(dst, cmd.raw, os.id)
	}
	if os.bound == st && os.boundGen == st.typesGen || len(st.types) != 2*n || len(cmd.raw)+len(st.types) >= maxPayload {
		return appendWithID(dst, cmd.raw, os.id)
	}
	os.bound, os.boundGen = st, st.typesGen
	dst, at := beginPacket(dst, cmd.raw[3])
	dst = append(dst, cmd.code)
	dst = append(dst, le32(os.id)...)
	dst = append(dst, b[4:9+nb]...)
	dst = append(dst, 1)
	dst = append(dst, st.types...)
	dst = append(dst, b[9+nb+1:]...)
	return finishPacket(dst, at)
}

// parseChangeUser reads the database and collation of a COM_CHANGE_USER body (after the
// command byte).
func parseChangeUser(b []byte, caps uint32) (db string, coll uint8, ok bool) {
	i := bytes.IndexByte(b, 0) // user
	if i < 0 {
		return "", 0, false
	}
	b = b[i+1:]
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", 0, false
		}
		b = b[1+int(b[0]):]
	} else if i = bytes.IndexByte(b, 0); i >= 0 {
		b = b[i+1:]
	} else {
		return "", 0, false
	}
	if i = bytes.IndexByte(b, 0); i < 0 {
		return string(b), 0, true
	}
	db, b = string(b[:i]), b[i+1:]
	if len(b) >= 2 {
		coll = b[0]
	}
	return db, coll, true
}

// dropLongData forgets the long data buffered for st, letting go of the buffers.
func (st *stmt) dropLongData() {
	clear(st.longData)
	st.longData = st.longData[:0]
}

// setCursor notes whether st has a cursor open. s.mu is held.
func (s *Session) setCursor(st *stmt, open bool) {
	switch {
	case open && !st.cursor:
		s.cursors++
	case !open && st.cursor:
		s.cursors--
	}
	st.cursor = open
}

// resetState forgets what the session set, as COM_RESET_CONNECTION does (the current database
// stays).
func (s *Session) resetState() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Clear()
	s.vars = nil
	s.dropStmts()
	s.cursors = 0
	s.lastInsertID, s.idLease = 0, 0
	s.xa = false
	s.ownDiag = nil
}

// Session is the pool side of a tunnel stream.
var _ link.Stream = (*Session)(nil)

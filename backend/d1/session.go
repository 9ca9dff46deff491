package d1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"
)

// handshakeTimeout bounds the startup exchange; a client that connects and says nothing is
// dropped.
const handshakeTimeout = 10 * time.Second

// session is one client connection: its SQLite connection, prepared statements, portals and
// transaction state. It is driven by one goroutine (serve); only the DB's CancelRequest handling
// touches it from outside, through c.interrupt.
type session struct {
	db     *DB
	nc     net.Conn
	r      *reader
	c      *conn
	pid    uint32
	secret uint32

	wbuf []byte // output not yet written

	settings settings
	stmts    map[string]*prepared
	portals  map[string]*portal

	implicit bool // an implicit transaction (a multi-statement query, an extended batch) is open
	failed   bool // an explicit transaction failed: only ROLLBACK is accepted until it ends
	skipping bool // an extended-protocol message failed: messages are ignored until Sync
	txBefore bool // an explicit transaction was open when the current statement started
	readOnly bool // the transaction is READ ONLY (PRAGMA query_only is on until it ends)
}

// serve runs a session on nc and closes nc.
func (db *DB) serve(ctx context.Context, nc net.Conn) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopDB := context.AfterFunc(db.ctx, cancel)
	defer stopDB()
	s := &session{db: db, nc: nc, r: newReader(nc)}
	// Ending the context unblocks the session wherever it waits: reading (the connection is
	// closed) or, once it has a database connection, running a statement (interrupted).
	stopClose := context.AfterFunc(ctx, func() { nc.Close() })
	defer stopClose()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("d1: session panic: %v", r)
			s.wbuf = s.wbuf[:0]
			s.fatal(&pgError{code: codeInternal, msg: "internal error in the d1 backend"})
		}
		nc.Close()
		if s.c != nil {
			db.unregister(s)
			s.closeAll()
			s.c.close() // an interrupt racing this finds the connection gone and does nothing
		}
	}()

	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	ok, err := s.startup()
	if ok && err == nil {
		nc.SetDeadline(time.Time{})
		stopInterrupt := context.AfterFunc(ctx, s.c.interrupt)
		defer stopInterrupt()
		err = s.loop()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || ctx.Err() != nil {
		return nil // the client went away, or the session was told to end
	}
	return err
}

// startup answers SSL and GSS requests with 'N', handles CancelRequest, and accepts a protocol
// 3 StartupMessage. ok is false when the connection carried a CancelRequest or was refused.
func (s *session) startup() (ok bool, err error) {
	for {
		code, body, err := s.r.startup()
		if err != nil {
			if pe, isPE := err.(*pgError); isPE {
				s.fatal(pe)
			}
			return false, err
		}
		switch code {
		case 80877103, 80877104: // SSLRequest, GSSENCRequest: the edge terminates TLS, not D1
			if _, err := s.nc.Write([]byte{'N'}); err != nil {
				return false, err
			}
			continue
		case 80877102: // CancelRequest
			var m pgproto3.CancelRequest
			if m.Decode(body) == nil {
				s.db.cancelQuery(m.ProcessID, m.SecretKey)
			}
			return false, nil
		}
		if code>>16 != 3 {
			s.fatal(errorf(codeFeatureNotSupported, "unsupported frontend protocol %d.%d: server supports 3.0", code>>16, code&0xffff))
			return false, nil
		}
		var m pgproto3.StartupMessage
		if err := m.Decode(body); err != nil {
			s.fatal(errorf(codeProtocolViolation, "invalid startup packet"))
			return false, nil
		}
		user := m.Parameters["user"]
		if user == "" {
			s.fatal(&pgError{code: "28000", msg: "no PostgreSQL user name specified in startup packet"})
			return false, nil
		}
		c, err := openConn(s.db.path)
		if err != nil {
			s.fatal(errorf("58030", "could not open the database"))
			return false, err
		}
		s.c = c
		s.db.register(s)
		s.stmts = make(map[string]*prepared)
		s.portals = make(map[string]*portal)
		// Protocol 3.2 and _pq_ options: say we speak 3.0 and none of them.
		var unknown []string
		for k := range m.Parameters {
			if len(k) > 4 && k[:4] == "_pq_" {
				unknown = append(unknown, k)
			}
		}
		if code != 3<<16 || len(unknown) > 0 {
			s.wbuf = appendMsg(s.wbuf, &pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
		}
		s.wbuf = appendMsg(s.wbuf, &pgproto3.AuthenticationOk{})
		s.settings.init(s.db.version, m.Parameters)
		for _, name := range reported {
			s.wbuf = appendMsg(s.wbuf, &pgproto3.ParameterStatus{Name: name, Value: s.settings.get(name)})
		}
		var key [4]byte
		key[0], key[1], key[2], key[3] = byte(s.secret>>24), byte(s.secret>>16), byte(s.secret>>8), byte(s.secret)
		s.wbuf = appendMsg(s.wbuf, &pgproto3.BackendKeyData{ProcessID: s.pid, SecretKey: key[:]})
		s.wbuf = appendReady(s.wbuf, 'I')
		return true, s.flush()
	}
}

// fatal sends a FATAL error; the caller then ends the session. A client that doesn't read it
// within a second doesn't hold the session open.
func (s *session) fatal(e *pgError) {
	e.severity = "FATAL"
	s.wbuf = appendMsg(s.wbuf, e.response())
	s.nc.SetWriteDeadline(time.Now().Add(time.Second))
	s.flush()
}

func (s *session) flush() error {
	if len(s.wbuf) == 0 {
		return nil
	}
	_, err := s.nc.Write(s.wbuf)
	s.wbuf = s.wbuf[:0]
	return err
}

// maybeFlush writes out a large result as it is produced.
func (s *session) maybeFlush() error {
	if len(s.wbuf) >= flushAt {
		return s.flush()
	}
	return nil
}

// loop serves messages until Terminate or an error.
func (s *session) loop() error {
	for {
		t, body, err := s.r.next()
		if err != nil {
			var pe *pgError
			if errors.As(err, &pe) {
				s.fatal(pe)
			}
			return err
		}
		if s.skipping && t != 'S' && t != 'X' {
			continue
		}
		s.txBefore = s.inExplicitTx()
		switch t {
		case 'Q':
			var m pgproto3.Query
			if err = m.Decode(body); err == nil {
				err = s.simpleQuery(m.String)
			}
		case 'P':
			var m pgproto3.Parse
			if err = m.Decode(body); err == nil {
				s.extended(s.parse(&m))
			}
		case 'B':
			var m pgproto3.Bind
			if err = m.Decode(body); err == nil {
				s.extended(s.bind(&m))
			}
		case 'D':
			var m pgproto3.Describe
			if err = m.Decode(body); err == nil {
				s.extended(s.describe(&m))
			}
		case 'E':
			var m pgproto3.Execute
			if err = m.Decode(body); err == nil {
				s.extended(s.execute(&m))
			}
		case 'C':
			var m pgproto3.Close
			if err = m.Decode(body); err == nil {
				s.extended(s.closeObject(&m))
			}
		case 'S':
			err = s.sync()
		case 'H':
			err = s.flush()
		case 'X':
			s.flush()
			return nil
		case 'd', 'c', 'f':
			// CopyData, CopyDone, CopyFail outside COPY are ignored, as PostgreSQL does.
		case 'F':
			s.extended(errorf(codeFeatureNotSupported, "the function call protocol is not supported by d1"))
		default:
			s.fatal(errorf(codeProtocolViolation, "invalid frontend message type %d", t))
			return fmt.Errorf("d1: invalid frontend message type %d", t)
		}
		if err != nil {
			var pe *pgError
			if errors.As(err, &pe) || !isIOError(err) {
				// A message that doesn't decode breaks the stream: 08P01 and the session ends.
				s.fatal(errorf(codeProtocolViolation, "invalid message format"))
			}
			return err
		}
		if err := s.maybeFlush(); err != nil {
			return err
		}
	}
}

// isIOError reports whether err came from the connection rather than from a message.
func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// status is the transaction status ReadyForQuery reports.
func (s *session) status() byte {
	s.txEnded()
	switch {
	case s.failed:
		return 'E'
	case !s.c.autocommit():
		return 'T'
	}
	return 'I'
}

// txEnded notices a transaction that ended and undoes what it set: READ ONLY.
func (s *session) txEnded() {
	if s.readOnly && s.c.autocommit() {
		s.readOnly = false
		_ = s.c.exec("PRAGMA query_only=0")
	}
}

// inExplicitTx reports whether a BEGIN the client sent is in force.
func (s *session) inExplicitTx() bool { return !s.implicit && !s.c.autocommit() }

// sendError reports a failed statement and puts the transaction in the state PostgreSQL would:
// an implicit transaction is rolled back, an explicit one is marked failed.
func (s *session) sendError(err error, sql string) {
	// SQLite rolls a transaction back by itself on some errors (disk full, RAISE(ROLLBACK));
	// the client still sees it failed, as PostgreSQL would have it.
	wasExplicit := s.txBefore || s.inExplicitTx() || s.failed
	pe := withPosition(toPG(err, !s.c.autocommit()), err, sql)
	s.wbuf = appendMsg(s.wbuf, pe.response())
	if s.implicit {
		s.rollback()
		s.implicit = false
	} else if wasExplicit {
		s.failed = true
	}
}

// notice sends a warning that doesn't fail the statement.
func (s *session) notice(code, msg string) {
	s.wbuf = appendMsg(s.wbuf, &pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: code, Message: msg})
}

func (s *session) rollback() {
	if !s.c.autocommit() {
		s.resetPortals()
		_ = s.c.exec("ROLLBACK")
	}
}

// beginImplicit opens the transaction that makes a multi-statement query or an extended batch
// atomic, as PostgreSQL's implicit transaction block does.
func (s *session) beginImplicit() error {
	if s.implicit || !s.c.autocommit() {
		return nil
	}
	// IMMEDIATE for the reason beginFor gives: a batch may read before it writes.
	if err := s.c.exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	s.implicit = true
	return nil
}

// endImplicit commits the implicit transaction, if one is open.
func (s *session) endImplicit() error {
	if !s.implicit {
		return nil
	}
	s.implicit = false
	if s.c.autocommit() {
		return nil
	}
	s.resetPortals()
	if err := s.c.exec("COMMIT"); err != nil {
		s.rollback()
		return err
	}
	return nil
}

// closeAll releases every statement and portal.
func (s *session) closeAll() {
	for name, p := range s.portals {
		p.close()
		delete(s.portals, name)
	}
	for name, ps := range s.stmts {
		ps.drop()
		delete(s.stmts, name)
	}
}

// withPosition points pe at the place in sql where SQLite found the error, if it said.
func withPosition(pe *pgError, err error, sql string) *pgError {
	var se *sqliteError
	if sql != "" && errors.As(err, &se) && se.offset >= 0 && se.offset <= len(sql) {
		cp := *pe
		cp.position = utf8.RuneCountInString(sql[:se.offset]) + 1
		return &cp
	}
	return pe
}

package d1

import (
	"context"
	"errors"
	"net"
	"unicode/utf8"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// session is one client connection: its SQLite connection and transaction state, and the
// prepared statements and portals package pgserver keeps for it. It is driven by one goroutine
// (pgserver.Serve); only the DB's CancelRequest handling touches it from outside, through
// c.interrupt.
type session struct {
	db     *DB
	ctx    context.Context
	w      *pgserver.Conn // the client: output, settings, statements and portals
	c      *conn
	pid    uint32
	secret uint32

	stopInterrupt func() bool

	implicit bool // an implicit transaction (a multi-statement query, an extended batch) is open
	failed   bool // an explicit transaction failed: only ROLLBACK is accepted until it ends
	txBefore bool // an explicit transaction was open when the current statement started
	readOnly bool // the transaction is READ ONLY (PRAGMA query_only is on until it ends)
}

var _ pgserver.Handler = (*session)(nil)

// serve runs a session on nc and closes nc.
func (db *DB) serve(ctx context.Context, nc net.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(db.ctx, cancel)()
	return pgserver.Serve(ctx, nc, pgserver.Config{
		Name:          "d1",
		ServerVersion: "15.0 (slipstream d1 / SQLite " + db.version + ")",
		Settings: map[string]string{
			"lock_timeout":                        "0",
			"idle_in_transaction_session_timeout": "0",
			"default_transaction_isolation":       "serializable",
			"transaction_read_only":               "off",
		},
		// A D1 value is limited to 1 GB by SQLite, but nobody sends that through a proxy in
		// one message.
		MaxMessage: 256 << 20,
		Cancel:     db.cancelQuery,
		Closing:    "terminating connection: the d1 database is closing",
	}, &session{db: db, ctx: ctx})
}

// Start opens the session's SQLite connection and registers it for CancelRequest.
func (s *session) Start(w *pgserver.Conn, _ map[string]string) (pgserver.Key, error) {
	c, err := openConn(s.db.path)
	if err != nil {
		return pgserver.Key{}, pgserver.Errorf("58030", "could not open the database")
	}
	s.w, s.c = w, c
	s.db.register(s)
	// Ending the context interrupts the statement running.
	s.stopInterrupt = context.AfterFunc(s.ctx, s.c.interrupt)
	return pgserver.Key{PID: s.pid, Secret: s.secret}, nil
}

// Close unregisters the session and closes its connection.
func (s *session) Close() {
	s.stopInterrupt()
	s.db.unregister(s)
	s.c.close() // an interrupt racing this finds the connection gone and does nothing
}

// Status is the transaction status ReadyForQuery reports.
func (s *session) Status() byte {
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

// Failed reports a failed extended-protocol message with sendError's transaction rules.
func (s *session) Failed(err error) *pgserver.Error {
	pe := s.fail(err, "")
	s.txBefore = false
	return pe
}

// sendError reports a failed statement of sql; see fail.
func (s *session) sendError(err error, sql string) {
	s.w.SendError(s.fail(err, sql))
}

// fail maps a failed statement to what the client sees and puts the transaction in the state
// PostgreSQL would: an implicit transaction is rolled back, an explicit one is marked failed.
func (s *session) fail(err error, sql string) *pgserver.Error {
	// SQLite rolls a transaction back by itself on some errors (disk full, RAISE(ROLLBACK));
	// the client still sees it failed, as PostgreSQL would have it.
	wasExplicit := s.txBefore || s.inExplicitTx() || s.failed
	pe := withPosition(toPG(err, !s.c.autocommit()), err, sql)
	if s.implicit {
		s.rollback()
		s.implicit = false
	} else if wasExplicit {
		s.failed = true
	}
	return pe
}

func (s *session) rollback() {
	if !s.c.autocommit() {
		s.w.ClosePortals()
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
	s.w.ClosePortals()
	if err := s.c.exec("COMMIT"); err != nil {
		s.rollback()
		return err
	}
	return nil
}

// withPosition points pe at the place in sql where SQLite found the error, if it said.
func withPosition(pe *pgserver.Error, err error, sql string) *pgserver.Error {
	var se *sqliteError
	if sql != "" && errors.As(err, &se) && se.offset >= 0 && se.offset <= len(sql) {
		cp := *pe
		cp.Position = utf8.RuneCountInString(sql[:se.offset]) + 1
		return &cp
	}
	return pe
}

package d1

import (
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// Query runs a Query message: each statement in turn, with SQLite's own tail handling
// splitting them (so a CREATE TRIGGER body's semicolons are never mistaken), and the writes of
// several in one implicit transaction, as PostgreSQL does.
func (s *session) Query(sql string) error {
	multi := hasSecondStatement(sql)
	off := 0
	ran := false
	for {
		kind, tag := classify(sql, off)
		if kind == kEmpty {
			break
		}
		ran = true
		s.txBefore = s.inExplicitTx()
		if s.failed && !allowedWhenFailed(kind) {
			s.sendError(errInFailedTx, sql)
			break
		}
		var err error
		if kind.answeredHere() {
			end := statementEnd(sql, off)
			err = s.answer(kind, tag, strings.TrimSuffix(strings.TrimSpace(sql[off:end]), ";"), true)
			off = end
		} else {
			var st *stmt
			var tail int
			st, tail, err = s.c.prepare(sql, off, false)
			if err == nil && st != nil && multi && !st.readonly() {
				// The writes of a multi-statement query are one transaction, as in PostgreSQL.
				if err = s.beginImplicit(); err != nil {
					st.finalize()
				}
			}
			if err == nil && st != nil {
				ps := &prepared{sql: sql[off:tail], kind: kind, tag: tag, st: st, cols: columnsOf(st)}
				p := &portal{s: s, ps: ps, st: st, own: true}
				err = p.run(0, true)
				p.Close()
				if err == nil && kind == kRollbackTo {
					s.failed = false
				}
			}
			off = tail
		}
		if err != nil {
			s.sendError(err, sql)
			break
		}
		if s.implicit && s.c.autocommit() {
			s.implicit = false // the client's COMMIT or ROLLBACK ended it
		}
		s.txEnded()
	}
	if !ran {
		s.w.Out = pgserver.AppendEmpty(s.w.Out, 'I') // EmptyQueryResponse
	}
	if err := s.endImplicit(); err != nil {
		s.sendError(err, sql)
	}
	if s.c.autocommit() {
		s.w.ClosePortals()
	}
	return nil
}

// hasSecondStatement reports whether sql holds more than one statement.
func hasSecondStatement(sql string) bool {
	l := lexer{s: sql}
	semi := false
	for {
		t := l.next()
		switch {
		case t.kind == tkEOF:
			return false
		case t.kind == tkSemi:
			semi = true
		case semi:
			return true
		}
	}
}

// allowedWhenFailed: the statements a failed transaction still accepts.
func allowedWhenFailed(k stmtKind) bool { return k == kRollback || k == kCommit || k == kRollbackTo }

// columnsOf reads a statement's result columns.
func columnsOf(st *stmt) []column {
	n := st.columnCount()
	if n == 0 {
		return nil
	}
	cols := make([]column, n)
	for i := range cols {
		cols[i] = column{name: st.columnName(i), decl: st.columnDecltype(i)}
	}
	return cols
}

// answeredColumns is the row description of a statement the session answers itself.
func answeredColumns(kind stmtKind, sql string) []pgproto3.FieldDescription {
	if kind != kShow && kind != kSetConfig {
		return nil
	}
	st, err := sessionStatement(kind, sql)
	if err != nil {
		return nil
	}
	return pgserver.SessionFields(st)
}

// sessionStatement reads SET, RESET, SHOW or set_config as package pgserver reads them for
// every backend; SQLite's dialect doesn't matter in them.
func sessionStatement(kind stmtKind, sql string) (*pgserver.SessionStatement, error) {
	stmts, err := pgserver.Lex(sql)
	if err == nil && len(stmts) == 1 {
		if st, err := pgserver.ParseSession(stmts[0]); err == nil {
			return st, nil
		}
	}
	switch kind {
	case kSetConfig:
		return nil, pgserver.Errorf(codeFeatureNotSupported, "d1 supports set_config('name', 'value', is_local) with literal arguments only")
	case kReset:
		return nil, pgserver.Errorf(codeSyntaxError, "syntax error in RESET statement")
	case kShow:
		return nil, pgserver.Errorf(codeSyntaxError, "syntax error in SHOW statement")
	}
	return nil, pgserver.Errorf(codeSyntaxError, "syntax error in SET statement")
}

// answer runs a statement SQLite doesn't know or that the session must see: transaction control
// and session settings. With describe it sends the RowDescription of a statement that returns a
// row.
func (s *session) answer(kind stmtKind, tag, sql string, describe bool) error {
	switch kind {
	case kBegin, kBeginNative:
		switch {
		case s.inExplicitTx():
			s.w.Notice(codeActiveTx, "there is already a transaction in progress")
		case s.implicit:
			s.implicit = false // the implicit block becomes the client's transaction
		case kind == kBeginNative:
			if err := s.c.exec(sql); err != nil {
				return err
			}
		default:
			begin := beginFor(sql)
			if err := s.c.exec(begin); err != nil {
				return err
			}
			if begin == beginReadOnly {
				s.setReadOnly()
			}
		}
	case kCommit:
		switch {
		case s.failed:
			s.rollback()
			s.failed = false
			tag = "ROLLBACK"
		case s.c.autocommit():
			s.w.Notice(codeNoActiveTx, "there is no transaction in progress")
		default:
			s.w.ClosePortals()
			if err := s.c.exec("COMMIT"); err != nil {
				s.rollback() // a deferred constraint failed: the transaction is over
				s.implicit = false
				return err
			}
			s.implicit = false
		}
	case kRollback:
		if s.c.autocommit() && !s.failed {
			s.w.Notice(codeNoActiveTx, "there is no transaction in progress")
		}
		s.rollback()
		s.failed = false
		s.implicit = false
	case kSet, kReset, kShow, kSetConfig:
		st, err := sessionStatement(kind, sql)
		if err != nil {
			return err
		}
		if st.Verb != pgserver.SetTransaction {
			// SET LOCAL runs as SET: D1 keeps no per-transaction settings.
			return s.w.RunSession(st, describe)
		}
		// Isolation levels don't apply (SQLite is serializable); READ ONLY does, for the
		// transaction it is set in.
		if ts := tokens(sql); ts[1].is(sql, "TRANSACTION") && beginFor(sql) == beginReadOnly && !s.c.autocommit() {
			s.setReadOnly()
		}
	case kDiscard:
		if !s.c.autocommit() {
			return pgserver.Errorf(codeActiveTx, "DISCARD ALL cannot run inside a transaction block")
		}
		s.w.CloseAll()
		s.w.Settings.ResetAll()
	case kDeallocate:
		ts := tokens(sql)
		k := 1
		if k < len(ts) && ts[k].is(sql, "PREPARE") {
			k++
		}
		if k >= len(ts) {
			return pgserver.Errorf(codeSyntaxError, "syntax error in DEALLOCATE statement")
		}
		name := unquoteIdent(ts[k].text(sql))
		if ts[k].is(sql, "ALL") {
			s.w.DeallocateAll()
			tag = "DEALLOCATE ALL"
		} else if err := s.w.Deallocate(name); err != nil {
			return err
		}
	}
	s.w.Out = pgserver.AppendCommandComplete(s.w.Out, tag, 0, false)
	return nil
}

// beginFor translates PostgreSQL's BEGIN. SQLite transactions are serializable whatever the
// isolation level asked for. A transaction that may write takes the write lock up front
// (IMMEDIATE): a deferred one that reads first and writes later can't wait for another writer
// (its snapshot would be stale) and would fail with a serialization error under any write
// concurrency, where PostgreSQL's default READ COMMITTED just waits. READ ONLY stays deferred,
// so readers never queue behind writers.
func beginFor(sql string) string {
	ts := tokens(sql)
	for k := 1; k+1 < len(ts); k++ {
		if ts[k].is(sql, "READ") && ts[k+1].is(sql, "ONLY") {
			return beginReadOnly
		}
	}
	return "BEGIN IMMEDIATE"
}

const beginReadOnly = "BEGIN DEFERRED"

// setReadOnly makes the open transaction refuse writes (SQLSTATE 25006), as READ ONLY does.
func (s *session) setReadOnly() {
	if err := s.c.exec("PRAGMA query_only=1"); err == nil {
		s.readOnly = true
	}
}

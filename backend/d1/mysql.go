package d1

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver"
)

// The MySQL protocol: a session is a mysqlserver session (handshake, session variables, status
// flags) over a SQLite connection of its own, run by mysqlSession below. The SQL is SQLite's,
// as over PostgreSQL, with what MySQL clients write around it: ? placeholders in prepared
// statements, _binary'…' literals (interpolated []byte), backquoted identifiers (SQLite reads
// them natively). MySQL's transaction rules apply: BEGIN inside a transaction commits it
// first, a failed statement leaves the transaction open, and with autocommit off the first
// statement opens one (BEGIN IMMEDIATE, for the reason beginFor gives).

// DialMySQL returns the client end of an in-memory connection to a new MySQL protocol session
// on db. Its signature is a dial function's, for the MySQL pool's embedded origins and for
// go-sql-driver/mysql's RegisterDialContext.
func (db *DB) DialMySQL(ctx context.Context, network, addr string) (net.Conn, error) {
	return db.dialWith(ctx, db.serveMySQL)
}

// ServeMySQL runs one MySQL protocol session on c until the client quits, the connection
// breaks, ctx ends or the DB closes; it closes c. A clean end returns nil.
func (db *DB) ServeMySQL(ctx context.Context, c net.Conn) error {
	return db.serveWith(ctx, c, db.serveMySQL)
}

// Name is the database's name, which MySQL clients select with USE or COM_INIT_DB: the one
// SetName gave it, else its file's without the extension.
func (db *DB) Name() string {
	if name := db.name.Load(); name != nil {
		return *name
	}
	base := filepath.Base(db.path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// SetName names the database for the MySQL sessions that start from now on, for a file whose
// name is not the database's (one created through the REST API is named by its ID).
func (db *DB) SetName(name string) { db.name.Store(&name) }

func (db *DB) serveMySQL(ctx context.Context, nc net.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(db.ctx, cancel)()
	c, err := openConn(db.path)
	if err != nil {
		nc.Close()
		return err
	}
	// Ending the context interrupts a running statement; Serve closes the connection.
	defer context.AfterFunc(ctx, c.interrupt)()
	m := &mysqlSession{c: c, autocommit: true}
	return mysqlserver.Serve(ctx, nc, mysqlserver.Config{
		Database:      db.Name(),
		ServerVersion: "8.0.36-slipstream-d1",
		Comment:       "slipstream d1 (SQLite " + db.version + ")",
	}, m)
}

// mysqlSession runs a MySQL session's statements on its SQLite connection.
type mysqlSession struct {
	c          *conn
	autocommit bool // MySQL's autocommit; when off, a statement outside a transaction opens one
	readOnly   bool // the transaction is READ ONLY (PRAGMA query_only is on until it ends)
}

var errQueryEmpty = &mysql.MyError{Code: 1065, State: "42000", Message: "Query was empty"}

func (m *mysqlSession) InTransaction() bool { return !m.c.autocommit() }

func (m *mysqlSession) Close() { m.c.close() }

func (m *mysqlSession) SetAutocommit(on bool) error {
	if on && !m.autocommit && !m.c.autocommit() {
		if err := m.commit(); err != nil {
			return err
		}
	}
	m.autocommit = on
	return nil
}

func (m *mysqlSession) Reset() error {
	m.rollback()
	m.autocommit = true
	return nil
}

func (m *mysqlSession) commit() error {
	if m.c.autocommit() {
		return nil
	}
	defer m.txEnded()
	if err := m.c.exec("COMMIT"); err != nil {
		_ = m.c.exec("ROLLBACK") // a deferred constraint failed: the transaction is over
		return myError(err)
	}
	return nil
}

func (m *mysqlSession) rollback() {
	if !m.c.autocommit() {
		_ = m.c.exec("ROLLBACK")
	}
	m.txEnded()
}

// txEnded undoes what a transaction set, once it is over: READ ONLY.
func (m *mysqlSession) txEnded() {
	if m.readOnly && m.c.autocommit() {
		m.readOnly = false
		_ = m.c.exec("PRAGMA query_only=0")
	}
}

// implicitBegin opens the transaction that autocommit off calls for.
func (m *mysqlSession) implicitBegin() error {
	if m.autocommit || !m.c.autocommit() {
		return nil
	}
	return myError(m.c.exec("BEGIN IMMEDIATE"))
}

// Query runs one statement of the text protocol.
func (m *mysqlSession) Query(w *mysqlserver.Results, sql string) error {
	sql = fromMySQL(sql, false)
	kind, _ := classify(sql, 0)
	switch kind {
	case kEmpty:
		return errQueryEmpty
	case kBegin, kBeginNative:
		if err := m.commit(); err != nil {
			return err
		}
		begin := sql
		if kind == kBegin {
			begin = beginFor(sql)
		}
		if err := m.c.exec(begin); err != nil {
			return myError(err)
		}
		if begin == beginReadOnly {
			if err := m.c.exec("PRAGMA query_only=1"); err == nil {
				m.readOnly = true
			}
		}
		return nil
	case kCommit:
		return m.commit()
	case kRollback:
		m.rollback()
		return nil
	case kShow:
		if ts := tokens(sql); len(ts) == 2 && ts[1].is(sql, "TABLES") {
			return m.showTables(w)
		}
		return notSupported("SHOW supports TABLES, DATABASES, VARIABLES and WARNINGS")
	case kReset, kDiscard, kDeallocate:
		return notSupported("d1 runs SQLite's SQL; session statements are SET, SHOW and USE")
	}
	st, tail, err := m.c.prepare(sql, 0, false)
	if err != nil {
		return myError(err)
	}
	if st == nil {
		return errQueryEmpty
	}
	defer st.finalize()
	if k, _ := classify(sql, tail); k != kEmpty {
		return notSupported("one statement per query: multi-statements are not supported")
	}
	if st.paramCount() > 0 {
		return &mysql.MyError{Code: 1064, State: "42000", Message: "placeholders (? :x @x $x) need a prepared statement; a variable can't be used in a query here"}
	}
	if err := m.implicitBegin(); err != nil {
		return err
	}
	defer m.txEnded()
	return m.run(w, st, kind)
}

func (m *mysqlSession) showTables(w *mysqlserver.Results) error {
	st, _, err := m.c.prepare(`SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`, 0, false)
	if err != nil {
		return myError(err)
	}
	defer st.finalize()
	if err := w.Columns([]mysqlserver.Column{{Name: "Tables", Type: mysqlserver.TypeVarString}}); err != nil {
		return err
	}
	for {
		row, err := st.step()
		if err != nil || !row {
			return myError(err)
		}
		w.BeginRow()
		w.Bytes(st.columnText(0))
		if err := w.EndRow(); err != nil {
			return err
		}
	}
}

// run steps st to its end, sending its rows, or an OK with the rows it changed.
func (m *mysqlSession) run(w *mysqlserver.Results, st *stmt, kind stmtKind) error {
	ncol := st.columnCount()
	if ncol == 0 {
		before := sqlite3.Xsqlite3_total_changes64(m.c.tls, m.c.db)
		for {
			row, err := st.step()
			if err != nil {
				return myError(err)
			}
			if !row {
				break
			}
		}
		var affected, id int64
		if sqlite3.Xsqlite3_total_changes64(m.c.tls, m.c.db) != before {
			affected = m.c.changes()
			if kind == kInsert {
				id = sqlite3.Xsqlite3_last_insert_rowid(m.c.tls, m.c.db)
			}
		}
		w.OK(uint64(affected), uint64(id))
		return nil
	}
	row, err := st.step()
	if err != nil {
		return myError(err)
	}
	cols := make([]mysqlserver.Column, ncol)
	for i := range cols {
		class := sqlNull
		if row {
			class = st.columnType(i)
		}
		cols[i] = mysqlserver.Column{Name: st.columnName(i), Type: mysqlType(resultOID(st.columnDecltype(i), class))}
	}
	if err := w.Columns(cols); err != nil {
		return err
	}
	for row {
		w.BeginRow()
		for i, col := range cols {
			appendMySQLValue(w, st, i, col.Type)
		}
		if err := w.EndRow(); err != nil {
			return err
		}
		if row, err = st.step(); err != nil {
			return myError(err)
		}
	}
	return nil
}

// Prepare compiles a statement for COM_STMT_PREPARE. Its ? placeholders are numbered (?1, ?2
// …) so that their types can be inferred from the columns they meet, as for PostgreSQL's $N:
// go-sql-driver sends a string and a []byte alike, and the column tells a BLOB from TEXT.
func (m *mysqlSession) Prepare(sql string) (mysqlserver.Stmt, error) {
	text := fromMySQL(sql, true)
	kind, _ := classify(text, 0)
	if kind.answeredHere() || kind == kEmpty {
		if text != sql {
			return nil, notSupported("placeholders in transaction and session statements")
		}
		return &mysqlTextStmt{m: m, sql: sql}, nil
	}
	st, tail, err := m.c.prepare(text, 0, true)
	if err != nil {
		return nil, myError(err)
	}
	if st == nil {
		return nil, errQueryEmpty
	}
	if k, _ := classify(text, tail); k != kEmpty {
		st.finalize()
		return nil, notSupported("one statement per prepared statement: multi-statements are not supported")
	}
	slots, count := paramSlots(st)
	for i := 1; i < len(slots); i++ {
		if name := st.paramName(i); len(name) < 2 || name[0] != '?' {
			st.finalize()
			return nil, &mysql.MyError{Code: 1064, State: "42000", Message: "only ? placeholders are supported, not " + name}
		}
	}
	ps := &mysqlStmt{m: m, st: st, kind: kind, slots: slots, count: count,
		oids: inferParamTypes(text, count, m.c.tableColumns)}
	for _, c := range columnsOf(st) {
		ps.cols = append(ps.cols, mysqlserver.Column{Name: c.name, Type: mysqlType(resultOID(c.decl, sqlNull))})
	}
	return ps, nil
}

// mysqlStmt is a statement prepared with COM_STMT_PREPARE.
type mysqlStmt struct {
	m     *mysqlSession
	st    *stmt
	kind  stmtKind
	slots []int    // SQLite parameter position -> ? number
	count int      // ? placeholders
	oids  []uint32 // inferred type of each ?
	cols  []mysqlserver.Column
}

func (ps *mysqlStmt) Params() int                   { return ps.count }
func (ps *mysqlStmt) Columns() []mysqlserver.Column { return ps.cols }
func (ps *mysqlStmt) Close()                        { ps.st.finalize() }

func (ps *mysqlStmt) Execute(w *mysqlserver.Results, args []any) error {
	if len(args) != ps.count {
		return &mysql.MyError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_execute"}
	}
	defer ps.st.reset()
	for i := 1; i < len(ps.slots); i++ {
		n := ps.slots[i] - 1
		if err := bindMySQL(ps.st, i, ps.oids[n], args[n]); err != nil {
			return myError(err)
		}
	}
	if err := ps.m.implicitBegin(); err != nil {
		return err
	}
	defer ps.m.txEnded()
	return ps.m.run(w, ps.st, ps.kind)
}

// mysqlTextStmt is a prepared transaction statement, run as the text protocol runs it.
type mysqlTextStmt struct {
	m   *mysqlSession
	sql string
}

func (ps *mysqlTextStmt) Params() int                   { return 0 }
func (ps *mysqlTextStmt) Columns() []mysqlserver.Column { return nil }
func (ps *mysqlTextStmt) Close()                        {}
func (ps *mysqlTextStmt) Execute(w *mysqlserver.Results, _ []any) error {
	return ps.m.Query(w, ps.sql)
}

// fromMySQL rewrites what MySQL clients write and SQLite reads otherwise: _binary'…' (and
// _charset'…') literals become X'…' and '…', and, for a prepared statement, each ? becomes ?N.
func fromMySQL(sql string, numberParams bool) string {
	n := 0
	return mysqlserver.Rewrite(sql, func(t mysqlserver.Token) (string, bool) {
		switch {
		case t.Kind == mysqlserver.Param && numberParams:
			n++
			return "?" + strconv.Itoa(n) + " ", true // the space keeps a digit after it out of the number
		case t.Kind == mysqlserver.String && t.Text[0] == '_':
			if t.Binary {
				return "X'" + hexString(t.Value) + "'", true
			}
			return "'" + strings.ReplaceAll(string(t.Value), "'", "''") + "'", true
		}
		return "", false
	})
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func notSupported(what string) error {
	return &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000", Message: "not supported by d1: " + what}
}

// myError is what a MySQL client sees of a failure: the SQLSTATE the PostgreSQL protocol would
// send, mapped to its MySQL error. A lock that can't be had is 1205 even inside a
// transaction: MySQL's lock wait timeout, which leaves the transaction open.
func myError(err error) error {
	if err == nil {
		return nil
	}
	if me, ok := err.(*mysql.MyError); ok {
		return me
	}
	pe := toPG(err, false)
	return mysqlserver.Error(pe.Code, pe.Message)
}

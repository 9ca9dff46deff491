package kv

import (
	"context"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver"
)

// The MySQL protocol: a session is a mysqlserver session running the statements the
// PostgreSQL protocol runs (parse.go), with what MySQL clients write turned into what the
// matcher reads: ? placeholders become $1, $2 …; string literals ('…', "…", X'…', _binary'…')
// become parameters too, so that a value is the literal's bytes as MySQL reads them, with no
// bytea escapes; `identifiers` become "identifiers". There are no transactions: BEGIN and
// autocommit off are refused (1235), COMMIT and ROLLBACK do nothing.

// DialMySQL returns the client end of an in-memory connection to a new MySQL protocol session
// on ns. Its signature is a dial function's, for the MySQL pool's embedded origins and for
// go-sql-driver/mysql's RegisterDialContext.
func (ns *Namespace) DialMySQL(ctx context.Context, network, addr string) (net.Conn, error) {
	return ns.dialWith(ctx, ns.serveMySQL)
}

// ServeMySQL runs one MySQL protocol session on c until the client quits, the connection
// breaks, ctx ends or the namespace closes; it closes c. A clean end returns nil.
func (ns *Namespace) ServeMySQL(ctx context.Context, c net.Conn) error {
	return ns.serveWith(ctx, c, ns.serveMySQL)
}

// Name is the namespace's name, which MySQL clients select with USE or COM_INIT_DB: the one
// SetName gave it, else its file's without the extension.
func (ns *Namespace) Name() string {
	if name := ns.name.Load(); name != nil {
		return *name
	}
	base := filepath.Base(ns.path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// SetName names the namespace for the MySQL sessions that start from now on, for a file whose
// name is not the namespace's (one created through the REST API is named by its ID).
func (ns *Namespace) SetName(name string) { ns.name.Store(&name) }

func (ns *Namespace) serveMySQL(ctx context.Context, nc net.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ns.ctx, cancel)()
	return mysqlserver.Serve(ctx, nc, mysqlserver.Config{
		Database:      ns.Name(),
		ServerVersion: "8.0.36-slipstream-kv",
		Comment:       "slipstream kv",
	}, &mysqlSession{ns: ns, ctx: ctx})
}

// mysqlSession runs a MySQL session's statements on the namespace.
type mysqlSession struct {
	ns  *Namespace
	ctx context.Context // the statement's context: it ends with the session
}

var errNoTransactions = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
	Message: "a KV namespace has no transactions: each statement takes effect by itself"}

func (m *mysqlSession) InTransaction() bool { return false }
func (m *mysqlSession) Reset() error        { return nil }
func (m *mysqlSession) Close()              {}

func (m *mysqlSession) SetAutocommit(on bool) error {
	if !on {
		return errNoTransactions
	}
	return nil
}

// Query runs one statement of the text protocol.
func (m *mysqlSession) Query(w *mysqlserver.Results, sql string) error {
	st, lits, err := m.parse(sql)
	if err != nil {
		return err
	}
	if st.params > 0 {
		return &mysql.MyError{Code: 1064, State: "42000", Message: "placeholders (?) need a prepared statement"}
	}
	return m.run(w, st.st, st.bind(nil, lits))
}

// Prepare matches a statement for COM_STMT_PREPARE.
func (m *mysqlSession) Prepare(sql string) (mysqlserver.Stmt, error) {
	st, lits, err := m.parse(sql)
	if err != nil {
		return nil, err
	}
	return &mysqlStmt{m: m, p: st, lits: lits}, nil
}

// mysqlStatement is a matched statement and where each of its $n comes from: the client's
// ?s in order, and the literals the rewrite lifted.
type mysqlStatement struct {
	st     *statement
	params int   // ? placeholders
	from   []int // $n -> index into the client's arguments, or -1-k for literal k
}

// parse rewrites a MySQL statement for the matcher and matches it.
func (m *mysqlSession) parse(sql string) (*mysqlStatement, [][]byte, error) {
	ms := &mysqlStatement{}
	var lits [][]byte
	text := mysqlserver.Rewrite(sql, func(t mysqlserver.Token) (string, bool) {
		switch t.Kind {
		case mysqlserver.Param:
			ms.from = append(ms.from, ms.params)
			ms.params++
		case mysqlserver.String:
			ms.from = append(ms.from, -1-len(lits))
			lits = append(lits, t.Value)
		case mysqlserver.Ident:
			return `"` + strings.ReplaceAll(strings.ReplaceAll(t.Text[1:len(t.Text)-1], "``", "`"), `"`, `""`) + `"`, true
		default:
			return "", false
		}
		return "$" + strconv.Itoa(len(ms.from)) + " ", true // the space keeps a digit after it out of the number
	})
	stmts, err := parseSQL(text)
	if err != nil {
		return nil, nil, myError(err)
	}
	if len(stmts) > 1 {
		return nil, nil, &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000", Message: "one statement per query: multi-statements are not supported"}
	}
	ms.st = stmts[0]
	return ms, lits, nil
}

// bind resolves the statement's $n against the client's arguments and the lifted literals.
func (ms *mysqlStatement) bind(args []any, lits [][]byte) values {
	vs := make(values, len(ms.from))
	for i, f := range ms.from {
		if f < 0 {
			vs[i] = arg{b: lits[-1-f]}
			continue
		}
		vs[i] = argOf(args[f])
	}
	return vs
}

// argOf converts a COM_STMT_EXECUTE argument as go-mysql decodes it.
func argOf(v any) arg {
	switch v := v.(type) {
	case nil:
		return arg{null: true}
	case int8:
		return arg{n: int64(v), isInt: true}
	case int16:
		return arg{n: int64(v), isInt: true}
	case int32:
		return arg{n: int64(v), isInt: true}
	case int64:
		return arg{n: v, isInt: true}
	case uint8:
		return arg{n: int64(v), isInt: true}
	case uint16:
		return arg{n: int64(v), isInt: true}
	case uint32:
		return arg{n: int64(v), isInt: true}
	case uint64:
		if v <= math.MaxInt64 {
			return arg{n: int64(v), isInt: true}
		}
		return arg{b: strconv.AppendUint(nil, v, 10)}
	case float32:
		return arg{b: strconv.AppendFloat(nil, float64(v), 'g', -1, 32)}
	case float64:
		return arg{b: strconv.AppendFloat(nil, v, 'g', -1, 64)}
	case mysql.TypedBytes:
		return arg{b: clone(v.Bytes)}
	case []byte:
		return arg{b: clone(v)}
	}
	return arg{null: true}
}

// mysqlColumns are the kv table's columns as MySQL types them.
var mysqlColumns = [...]mysqlserver.Column{
	colKey:        {Name: "key", Table: "kv", Type: mysqlserver.TypeVarString},
	colValue:      {Name: "value", Table: "kv", Type: mysqlserver.TypeBlob},
	colMetadata:   {Name: "metadata", Table: "kv", Type: mysqlserver.TypeVarString},
	colExpiration: {Name: "expiration", Table: "kv", Type: mysqlserver.TypeLongLong},
}

// run executes a matched statement.
func (m *mysqlSession) run(w *mysqlserver.Results, st *statement, vs values) error {
	now := time.Now().Unix()
	switch st.verb {
	case vEmpty:
		return &mysql.MyError{Code: 1065, State: "42000", Message: "Query was empty"}
	case vGet:
		return m.selectRows(w, &portal{ps: &prepared{st: st}, args: vs}, now)
	case vPut:
		es, err := entries(st, vs, now)
		if err == nil {
			err = m.ns.putAll(m.ctx, es)
		}
		if err != nil {
			return myError(err)
		}
		w.OK(uint64(len(es)), 0)
		return nil
	case vDelete:
		n, err := m.ns.deleteMatching(m.ctx, st, vs, now)
		if err != nil {
			return myError(err)
		}
		w.OK(uint64(n), 0)
		return nil
	case vBegin:
		return errNoTransactions
	case vCommit, vRollback:
		return nil
	}
	return myError(&parseError{"SET, SHOW and USE take MySQL's forms here"})
}

// selectRows sends a SELECT's rows, a page of storage at a time.
func (m *mysqlSession) selectRows(w *mysqlserver.Results, p *portal, now int64) error {
	q, err := p.resolve()
	if err != nil {
		return myError(err)
	}
	p.q, p.done = q, q.none || q.limit == 0
	cols := make([]mysqlserver.Column, len(p.ps.st.cols))
	for i, c := range p.ps.st.cols {
		cols[i] = mysqlColumns[c]
	}
	if err := w.Columns(cols); err != nil {
		return err
	}
	for {
		if len(p.page) == 0 {
			if p.done {
				return nil
			}
			if err := m.ns.readPage(m.ctx, p, now); err != nil {
				return myError(err)
			}
			continue
		}
		e := &p.page[0]
		w.BeginRow()
		for _, c := range p.ps.st.cols {
			switch {
			case c == colKey:
				w.Bytes([]byte(e.key))
			case c == colValue:
				w.Bytes(e.value)
			case c == colMetadata && e.metadata != nil:
				w.Bytes(e.metadata)
			case c == colExpiration && e.expires:
				w.Int(e.expiration)
			default:
				w.Null()
			}
		}
		if err := w.EndRow(); err != nil {
			return err
		}
		p.page[0] = entry{}
		p.page = p.page[1:]
		p.sent++
	}
}

// mysqlStmt is a statement prepared with COM_STMT_PREPARE.
type mysqlStmt struct {
	m    *mysqlSession
	p    *mysqlStatement
	lits [][]byte
}

func (ps *mysqlStmt) Params() int { return ps.p.params }
func (ps *mysqlStmt) Close()      {}

func (ps *mysqlStmt) Columns() []mysqlserver.Column {
	if ps.p.st.verb != vGet {
		return nil
	}
	cols := make([]mysqlserver.Column, len(ps.p.st.cols))
	for i, c := range ps.p.st.cols {
		cols[i] = mysqlColumns[c]
	}
	return cols
}

func (ps *mysqlStmt) Execute(w *mysqlserver.Results, args []any) error {
	if len(args) != ps.p.params {
		return &mysql.MyError{Code: 1210, State: "HY000", Message: "Incorrect arguments to mysqld_stmt_execute"}
	}
	return ps.m.run(w, ps.p.st, ps.p.bind(args, ps.lits))
}

// mysqlSupported is unsupportedMsg in MySQL's placeholder spelling.
var mysqlSupported = strings.NewReplacer("$cursor", "?", "$1", "?")

// myError is what a MySQL client sees of a failure: the SQLSTATE the PostgreSQL protocol would
// send, mapped to its MySQL error; a statement the namespace doesn't run is 1235
// ER_NOT_SUPPORTED_YET with the list of what it does.
func myError(err error) error {
	if me, ok := err.(*mysql.MyError); ok {
		return me
	}
	pe := toPG(err)
	return mysqlserver.Error(pe.Code, mysqlSupported.Replace(pe.Message))
}

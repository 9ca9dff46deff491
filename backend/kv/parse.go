package kv

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// The statement matcher: a strict reader of the few statement shapes a KV namespace answers,
// written for what drivers and ORMs send (any case, optional quoting and "kv." qualification,
// $n parameters or literals, casts to the column's type). Anything else is refused with 0A000
// and the list of what is supported (unsupportedMsg).

// column is one of the kv table's columns, or the expiration_ttl pseudo-column of an INSERT.
type column uint8

const (
	colKey column = iota
	colValue
	colMetadata
	colExpiration
	colTTL
)

var columnNames = [...]string{"key", "value", "metadata", "expiration", "expiration_ttl"}

// columnType is the PostgreSQL type of a column, and of a parameter that stands for one.
var columnType = [...]uint32{pgserver.OIDText, pgserver.OIDBytea, pgserver.OIDJSON, pgserver.OIDInt8, pgserver.OIDInt8}

// verb is what a statement does.
type verb uint8

const (
	vEmpty      verb = iota
	vGet             // SELECT ... FROM kv [WHERE ...] [ORDER BY key] [LIMIT n]
	vPut             // INSERT INTO kv (...) VALUES (...)[, (...)]
	vDelete          // DELETE FROM kv WHERE key = x
	vSession         // SET, RESET, SHOW, set_config: read by package pgserver
	vDiscard         // DISCARD ALL | PLANS | SEQUENCES | TEMP
	vDeallocate      // DEALLOCATE [PREPARE] name | ALL
	vBegin           // BEGIN, START TRANSACTION: refused, there are no transactions
	vCommit          // COMMIT, END: nothing to commit
	vRollback        // ROLLBACK, ABORT: nothing to roll back
)

// operand is a value in a statement: a $n parameter or a literal.
type operand struct {
	kind  uint8  // opNone, opParam, opString, opNumber, opNull
	param int    // $n
	text  string // a string's content, a number as written (sign included)
}

const (
	opNone uint8 = iota
	opParam
	opString
	opNumber
	opNull
)

// statement is a matched statement.
type statement struct {
	verb verb

	cols []column    // vGet: the result columns; vPut: the columns given
	rows [][]operand // vPut: one list of operands per row

	key   operand // key = x (vGet, vDelete)
	like  operand // key LIKE x (vGet)
	after operand // key > x (vGet)
	limit operand // LIMIT x (vGet)

	params []uint32 // the type of each $n, inferred from where it stands

	name    string                     // vDeallocate: the statement; "" for ALL
	session *pgserver.SessionStatement // vSession
	tag     string                     // the command tag of a session statement
}

// unsupportedMsg is what a client is told for a statement a KV namespace doesn't run.
const unsupportedMsg = "a KV namespace supports only: SELECT key, value, metadata, expiration FROM kv " +
	"[WHERE key = $1 | WHERE key LIKE 'prefix%' [AND key > $cursor]] [ORDER BY key] [LIMIT n]; " +
	"INSERT INTO kv (key, value[, metadata][, expiration | expiration_ttl]) VALUES (...) (a put that overwrites); " +
	"DELETE FROM kv WHERE key = $1"

// parseError is a statement the matcher refuses; msg says why, and the client sees it with
// unsupportedMsg.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

// parser reads one statement's tokens.
type parser struct {
	pgserver.Cursor
	st *statement
}

// parse matches one statement's tokens.
func parse(ts []pgserver.Token) (*statement, error) {
	p := &parser{Cursor: pgserver.Cursor{Tokens: ts, Fail: func(format string, args ...any) error {
		return &parseError{fmt.Sprintf(format, args...)}
	}}, st: &statement{}}
	if len(ts) == 0 {
		return p.st, nil
	}
	if err := p.statement(); err != nil {
		return nil, err
	}
	for i, oid := range p.st.params {
		if oid == pgserver.OIDUnknown {
			p.st.params[i] = pgserver.OIDText // a $n the statement skips, as in "$2 ... $3" without $1
		}
	}
	return p.st, nil
}

// parseSQL lexes and matches the statements of a query string.
func parseSQL(sql string) ([]*statement, error) {
	stmts, err := pgserver.Lex(sql)
	if err != nil {
		return nil, err
	}
	out := make([]*statement, 0, len(stmts))
	for _, ts := range stmts {
		st, err := parse(ts)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (p *parser) statement() error {
	t := p.Next()
	switch {
	case t.Is("SET"), t.Is("RESET"), t.Is("SHOW"), t.Is("SELECT") && pgserver.IsSession(p.Tokens):
		return p.session()
	case t.Is("SELECT"):
		return p.selectStmt()
	case t.Is("INSERT"):
		return p.insert()
	case t.Is("DELETE"):
		return p.delete()
	case t.Is("DISCARD"):
		p.st.verb, p.st.tag = vDiscard, "DISCARD ALL"
		w := p.Next()
		if !(w.Is("ALL") || w.Is("PLANS") || w.Is("SEQUENCES") || w.Is("TEMP") || w.Is("TEMPORARY")) {
			return p.Fail("expected ALL, PLANS, SEQUENCES or TEMP after DISCARD")
		}
		p.st.tag = "DISCARD " + strings.ToUpper(w.Text)
		if w.Is("TEMPORARY") {
			p.st.tag = "DISCARD TEMP"
		}
		return p.End()
	case t.Is("DEALLOCATE"):
		p.st.verb, p.st.tag = vDeallocate, "DEALLOCATE"
		p.Accept("PREPARE")
		switch w := p.Next(); {
		case w.Is("ALL"):
			p.st.tag = "DEALLOCATE ALL"
		case w.Kind == pgserver.TokWord:
			p.st.name = strings.ToLower(w.Text)
		case w.Kind == pgserver.TokQuoted:
			p.st.name = w.Val
		default:
			return p.Fail("expected a statement name or ALL after DEALLOCATE")
		}
		return p.End()
	case t.Is("BEGIN") || t.Is("START"):
		p.st.verb = vBegin
		return nil
	case t.Is("COMMIT") || t.Is("END"):
		p.st.verb, p.st.tag = vCommit, "COMMIT"
		return p.transactionTail()
	case t.Is("ROLLBACK") || t.Is("ABORT"):
		p.st.verb, p.st.tag = vRollback, "ROLLBACK"
		return p.transactionTail()
	}
	return p.Fail("unsupported statement %s", strconv.Quote(t.Text))
}

// table reads the table name: kv, "kv", or either qualified by public.
func (p *parser) table() error {
	t := p.Next()
	if (t.Is("public") || t.Kind == pgserver.TokQuoted && t.Val == "public") && p.AcceptPunct(".") {
		t = p.Next()
	}
	if !(t.Is("kv") || t.Kind == pgserver.TokQuoted && t.Val == "kv") {
		return p.Fail("the only table is kv, not %s", strconv.Quote(t.Text))
	}
	return nil
}

// column reads a column name, optionally qualified by kv.
func (p *parser) column(allowTTL bool) (column, error) {
	t := p.Next()
	name := strings.ToLower(t.Text)
	if t.Kind == pgserver.TokQuoted {
		name = t.Val
	} else if t.Kind != pgserver.TokWord {
		return 0, p.Fail("expected a column at %s", strconv.Quote(t.Text))
	}
	if p.AcceptPunct(".") {
		if name != "kv" {
			return 0, p.Fail("the only table is kv, not %s", strconv.Quote(t.Text))
		}
		return p.column(allowTTL)
	}
	for c, n := range columnNames {
		if n == name && (column(c) != colTTL || allowTTL) {
			return column(c), nil
		}
	}
	return 0, p.Fail("no column %s: the columns are key, value, metadata and expiration", strconv.Quote(name))
}

// isColumn reports whether the next tokens name column c.
func (p *parser) isColumn(c column) bool {
	save := p.Pos
	got, err := p.column(false)
	p.Pos = save
	return err == nil && got == c
}

// operand reads a value: $n, a string, a number, NULL, optionally cast (::type) to the type of
// the column it stands for.
func (p *parser) operand(c column) (operand, error) {
	t := p.Next()
	var op operand
	switch {
	case t.Kind == pgserver.TokParam:
		n, err := strconv.Atoi(t.Val)
		if err != nil || n < 1 || n > maxParams {
			return op, p.Fail("parameter %s is out of range", t.Text)
		}
		op = operand{kind: opParam, param: n}
		for len(p.st.params) < n {
			p.st.params = append(p.st.params, pgserver.OIDUnknown)
		}
		if p.st.params[n-1] == pgserver.OIDUnknown {
			p.st.params[n-1] = columnType[c]
		}
	case t.Kind == pgserver.TokString:
		op = operand{kind: opString, text: t.Val}
	case t.Kind == pgserver.TokNumber:
		op = operand{kind: opNumber, text: t.Text}
	case t.IsPunct("-") || t.IsPunct("+"):
		n := p.Next()
		if n.Kind != pgserver.TokNumber {
			return op, p.Fail("expected a number after %s", t.Text)
		}
		op = operand{kind: opNumber, text: strings.TrimPrefix(t.Text, "+") + n.Text}
	case t.IsPunct("("):
		// pgx's simple protocol writes a negative number as is, others wrap values in parentheses.
		inner, err := p.operand(c)
		if err != nil {
			return op, err
		}
		if err := p.ExpectPunct(")"); err != nil {
			return op, err
		}
		op = inner
	case t.Is("NULL"):
		op = operand{kind: opNull}
	default:
		return op, p.Fail("expected a value ($n, 'text', a number or NULL) at %s", strconv.Quote(t.Text))
	}
	if p.AcceptPunct("::") {
		ty := p.Next()
		if !castFits(c, strings.ToLower(ty.Text)) {
			return op, p.Fail("cannot cast %s to %s", columnNames[c], strconv.Quote(ty.Text))
		}
	}
	return op, nil
}

// castFits reports whether a cast to ty keeps a value in column c's type.
func castFits(c column, ty string) bool {
	switch c {
	case colKey:
		return ty == "text" || ty == "varchar"
	case colValue:
		return ty == "bytea"
	case colMetadata:
		return ty == "json" || ty == "jsonb" || ty == "text"
	}
	return ty == "int8" || ty == "bigint" || ty == "int" || ty == "integer" || ty == "int4"
}

// maxParams is PostgreSQL's limit on parameters in a statement.
const maxParams = 65535

// selectStmt reads SELECT cols FROM kv [WHERE cond [AND cond]...] [ORDER BY key [ASC]] [LIMIT x].
func (p *parser) selectStmt() error {
	st := p.st
	st.verb = vGet
	if p.AcceptPunct("*") {
		st.cols = []column{colKey, colValue, colMetadata, colExpiration}
	} else {
		for {
			c, err := p.column(false)
			if err != nil {
				return err
			}
			st.cols = append(st.cols, c)
			if !p.AcceptPunct(",") {
				break
			}
		}
	}
	if err := p.Expect("FROM"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if p.Accept("WHERE") {
		for {
			if err := p.condition(); err != nil {
				return err
			}
			if !p.Accept("AND") {
				break
			}
		}
	}
	if p.Accept("ORDER") {
		if err := p.Expect("BY"); err != nil {
			return err
		}
		if !p.isColumn(colKey) {
			return p.Fail("rows can be ordered by key only")
		}
		p.column(false)
		if p.Peek().Is("DESC") {
			return p.Fail("keys are listed in ascending order only")
		}
		p.Accept("ASC")
	}
	if p.Accept("LIMIT") {
		if p.Peek().Is("ALL") {
			p.Next()
		} else {
			op, err := p.operand(colExpiration) // an int8
			if err != nil {
				return err
			}
			st.limit = op
		}
	}
	return p.End()
}

const conditionsMsg = "conditions can test key only: key = $1, key LIKE 'prefix%', key > $cursor"

// condition reads key = x, key LIKE x or key > x; each may appear once.
func (p *parser) condition() error {
	if !p.isColumn(colKey) {
		return p.Fail("%s", conditionsMsg)
	}
	p.column(false)
	var slot *operand
	switch t := p.Next(); {
	case t.IsPunct("="):
		slot = &p.st.key
	case t.Is("LIKE"):
		slot = &p.st.like
	case t.IsPunct(">"):
		slot = &p.st.after
	default:
		return p.Fail("%s", conditionsMsg)
	}
	if slot.kind != opNone {
		return p.Fail("each of key =, key LIKE and key > may appear once")
	}
	op, err := p.operand(colKey)
	if err != nil {
		return err
	}
	*slot = op
	return nil
}

// insert reads INSERT INTO kv (cols) VALUES (x, ...)[, (x, ...)].
func (p *parser) insert() error {
	st := p.st
	st.verb = vPut
	if err := p.Expect("INTO"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if err := p.ExpectPunct("("); err != nil {
		return err
	}
	var seen [colTTL + 1]bool
	for {
		c, err := p.column(true)
		if err != nil {
			return err
		}
		if seen[c] {
			return p.Fail("column %s is given twice", columnNames[c])
		}
		seen[c] = true
		st.cols = append(st.cols, c)
		if !p.AcceptPunct(",") {
			break
		}
	}
	if err := p.ExpectPunct(")"); err != nil {
		return err
	}
	switch {
	case !seen[colKey] || !seen[colValue]:
		return p.Fail("a put needs key and value")
	case seen[colExpiration] && seen[colTTL]:
		return p.Fail("give expiration or expiration_ttl, not both")
	}
	if err := p.Expect("VALUES"); err != nil {
		return err
	}
	for {
		if err := p.ExpectPunct("("); err != nil {
			return err
		}
		row := make([]operand, 0, len(st.cols))
		for i, c := range st.cols {
			if i > 0 {
				if err := p.ExpectPunct(","); err != nil {
					return err
				}
			}
			op, err := p.operand(c)
			if err != nil {
				return err
			}
			row = append(row, op)
		}
		if err := p.ExpectPunct(")"); err != nil {
			return err
		}
		st.rows = append(st.rows, row)
		if !p.AcceptPunct(",") {
			break
		}
	}
	if p.Peek().Is("ON") {
		return p.Fail("INSERT INTO kv always overwrites (a KV put): leave out ON CONFLICT")
	}
	if p.Peek().Is("RETURNING") {
		return p.Fail("RETURNING is not supported")
	}
	return p.End()
}

// delete reads DELETE FROM kv WHERE key = x.
func (p *parser) delete() error {
	p.st.verb = vDelete
	if err := p.Expect("FROM"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if err := p.Expect("WHERE"); err != nil {
		return p.Fail("DELETE needs WHERE key = $1")
	}
	if !p.isColumn(colKey) {
		return p.Fail("DELETE needs WHERE key = $1")
	}
	p.column(false)
	if err := p.ExpectPunct("="); err != nil {
		return p.Fail("DELETE needs WHERE key = $1")
	}
	op, err := p.operand(colKey)
	if err != nil {
		return err
	}
	p.st.key = op
	return p.End()
}

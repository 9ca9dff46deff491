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
	vSet             // SET [SESSION] name {= | TO} value, SET TIME ZONE value
	vSetLocal        // SET LOCAL ...: no transaction, so no effect
	vSetNoop         // SET TRANSACTION ..., SET SESSION CHARACTERISTICS ...
	vReset           // RESET name | RESET ALL
	vShow            // SHOW name
	vSetConfig       // SELECT [pg_catalog.]set_config('name', 'value', bool)[, ...]
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

	name  string      // vSet, vReset, vShow, vDeallocate: the parameter or statement; "" for ALL
	value string      // vSet: the value
	deflt bool        // vSet: SET x TO DEFAULT (or SET TIME ZONE LOCAL)
	pairs [][2]string // vSetConfig: name and value of each call
	tag   string      // the command tag of a session statement
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
	ts  []token
	pos int
	st  *statement
}

// parse matches one statement's tokens.
func parse(ts []token) (*statement, error) {
	p := &parser{ts: ts, st: &statement{}}
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
	stmts, err := lex(sql)
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

func (p *parser) peek() token {
	if p.pos < len(p.ts) {
		return p.ts[p.pos]
	}
	return token{kind: tEOF}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.ts) {
		p.pos++
	}
	return t
}

// accept consumes the keyword kw if it is next.
func (p *parser) accept(kw string) bool {
	if p.peek().is(kw) {
		p.pos++
		return true
	}
	return false
}

// acceptPunct consumes the punctuation s if it is next.
func (p *parser) acceptPunct(s string) bool {
	if p.peek().punct(s) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) fail(format string, args ...any) error {
	return &parseError{fmt.Sprintf(format, args...)}
}

// expect consumes the keyword kw or fails.
func (p *parser) expect(kw string) error {
	if !p.accept(kw) {
		return p.fail("expected %s at %s", kw, p.describe())
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if !p.acceptPunct(s) {
		return p.fail("expected %s at %s", s, p.describe())
	}
	return nil
}

// describe names the next token for an error message.
func (p *parser) describe() string {
	t := p.peek()
	if t.kind == tEOF {
		return "end of statement"
	}
	s := t.text
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// end fails unless the statement is over.
func (p *parser) end() error {
	if p.pos < len(p.ts) {
		return p.fail("unexpected %s", p.describe())
	}
	return nil
}

func (p *parser) statement() error {
	t := p.next()
	switch {
	case t.is("SELECT"):
		if p.peek().is("set_config") || p.peek().is("pg_catalog") {
			return p.setConfig()
		}
		return p.selectStmt()
	case t.is("INSERT"):
		return p.insert()
	case t.is("DELETE"):
		return p.delete()
	case t.is("SET"):
		return p.set()
	case t.is("RESET"):
		p.st.verb, p.st.tag = vReset, "RESET"
		if err := p.settingName(true); err != nil {
			return err
		}
		return p.end()
	case t.is("SHOW"):
		p.st.verb, p.st.tag = vShow, "SHOW"
		if p.peek().is("ALL") {
			return p.fail("SHOW ALL is not supported")
		}
		if err := p.settingName(false); err != nil {
			return err
		}
		return p.end()
	case t.is("DISCARD"):
		p.st.verb, p.st.tag = vDiscard, "DISCARD ALL"
		w := p.next()
		if !(w.is("ALL") || w.is("PLANS") || w.is("SEQUENCES") || w.is("TEMP") || w.is("TEMPORARY")) {
			return p.fail("expected ALL, PLANS, SEQUENCES or TEMP after DISCARD")
		}
		p.st.tag = "DISCARD " + strings.ToUpper(w.text)
		if w.is("TEMPORARY") {
			p.st.tag = "DISCARD TEMP"
		}
		return p.end()
	case t.is("DEALLOCATE"):
		p.st.verb, p.st.tag = vDeallocate, "DEALLOCATE"
		p.accept("PREPARE")
		switch w := p.next(); {
		case w.is("ALL"):
			p.st.tag = "DEALLOCATE ALL"
		case w.kind == tWord:
			p.st.name = strings.ToLower(w.text)
		case w.kind == tQuoted:
			p.st.name = w.val
		default:
			return p.fail("expected a statement name or ALL after DEALLOCATE")
		}
		return p.end()
	case t.is("BEGIN") || t.is("START"):
		p.st.verb = vBegin
		return nil
	case t.is("COMMIT") || t.is("END"):
		p.st.verb, p.st.tag = vCommit, "COMMIT"
		return p.transactionTail()
	case t.is("ROLLBACK") || t.is("ABORT"):
		p.st.verb, p.st.tag = vRollback, "ROLLBACK"
		return p.transactionTail()
	}
	return p.fail("unsupported statement %s", strconv.Quote(t.text))
}

// table reads the table name: kv, "kv", or either qualified by public.
func (p *parser) table() error {
	t := p.next()
	if (t.is("public") || t.kind == tQuoted && t.val == "public") && p.acceptPunct(".") {
		t = p.next()
	}
	if !(t.is("kv") || t.kind == tQuoted && t.val == "kv") {
		return p.fail("the only table is kv, not %s", strconv.Quote(t.text))
	}
	return nil
}

// column reads a column name, optionally qualified by kv.
func (p *parser) column(allowTTL bool) (column, error) {
	t := p.next()
	name := strings.ToLower(t.text)
	if t.kind == tQuoted {
		name = t.val
	} else if t.kind != tWord {
		return 0, p.fail("expected a column at %s", strconv.Quote(t.text))
	}
	if p.acceptPunct(".") {
		if name != "kv" {
			return 0, p.fail("the only table is kv, not %s", strconv.Quote(t.text))
		}
		return p.column(allowTTL)
	}
	for c, n := range columnNames {
		if n == name && (column(c) != colTTL || allowTTL) {
			return column(c), nil
		}
	}
	return 0, p.fail("no column %s: the columns are key, value, metadata and expiration", strconv.Quote(name))
}

// isColumn reports whether the next tokens name column c.
func (p *parser) isColumn(c column) bool {
	save := p.pos
	got, err := p.column(false)
	p.pos = save
	return err == nil && got == c
}

// operand reads a value: $n, a string, a number, NULL, optionally cast (::type) to the type of
// the column it stands for.
func (p *parser) operand(c column) (operand, error) {
	t := p.next()
	var op operand
	switch {
	case t.kind == tParam:
		n, err := strconv.Atoi(t.val)
		if err != nil || n < 1 || n > maxParams {
			return op, p.fail("parameter %s is out of range", t.text)
		}
		op = operand{kind: opParam, param: n}
		for len(p.st.params) < n {
			p.st.params = append(p.st.params, pgserver.OIDUnknown)
		}
		if p.st.params[n-1] == pgserver.OIDUnknown {
			p.st.params[n-1] = columnType[c]
		}
	case t.kind == tString:
		op = operand{kind: opString, text: t.val}
	case t.kind == tNumber:
		op = operand{kind: opNumber, text: t.text}
	case t.punct("-") || t.punct("+"):
		n := p.next()
		if n.kind != tNumber {
			return op, p.fail("expected a number after %s", t.text)
		}
		op = operand{kind: opNumber, text: strings.TrimPrefix(t.text, "+") + n.text}
	case t.punct("("):
		// pgx's simple protocol writes a negative number as is, others wrap values in parentheses.
		inner, err := p.operand(c)
		if err != nil {
			return op, err
		}
		if err := p.expectPunct(")"); err != nil {
			return op, err
		}
		op = inner
	case t.is("NULL"):
		op = operand{kind: opNull}
	default:
		return op, p.fail("expected a value ($n, 'text', a number or NULL) at %s", strconv.Quote(t.text))
	}
	if p.acceptPunct("::") {
		ty := p.next()
		if !castFits(c, strings.ToLower(ty.text)) {
			return op, p.fail("cannot cast %s to %s", columnNames[c], strconv.Quote(ty.text))
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
	if p.acceptPunct("*") {
		st.cols = []column{colKey, colValue, colMetadata, colExpiration}
	} else {
		for {
			c, err := p.column(false)
			if err != nil {
				return err
			}
			st.cols = append(st.cols, c)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if err := p.expect("FROM"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if p.accept("WHERE") {
		for {
			if err := p.condition(); err != nil {
				return err
			}
			if !p.accept("AND") {
				break
			}
		}
	}
	if p.accept("ORDER") {
		if err := p.expect("BY"); err != nil {
			return err
		}
		if !p.isColumn(colKey) {
			return p.fail("rows can be ordered by key only")
		}
		p.column(false)
		if p.peek().is("DESC") {
			return p.fail("keys are listed in ascending order only")
		}
		p.accept("ASC")
	}
	if p.accept("LIMIT") {
		if p.peek().is("ALL") {
			p.next()
		} else {
			op, err := p.operand(colExpiration) // an int8
			if err != nil {
				return err
			}
			st.limit = op
		}
	}
	return p.end()
}

const conditionsMsg = "conditions can test key only: key = $1, key LIKE 'prefix%', key > $cursor"

// condition reads key = x, key LIKE x or key > x; each may appear once.
func (p *parser) condition() error {
	if !p.isColumn(colKey) {
		return p.fail("%s", conditionsMsg)
	}
	p.column(false)
	var slot *operand
	switch t := p.next(); {
	case t.punct("="):
		slot = &p.st.key
	case t.is("LIKE"):
		slot = &p.st.like
	case t.punct(">"):
		slot = &p.st.after
	default:
		return p.fail("%s", conditionsMsg)
	}
	if slot.kind != opNone {
		return p.fail("each of key =, key LIKE and key > may appear once")
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
	if err := p.expect("INTO"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if err := p.expectPunct("("); err != nil {
		return err
	}
	var seen [colTTL + 1]bool
	for {
		c, err := p.column(true)
		if err != nil {
			return err
		}
		if seen[c] {
			return p.fail("column %s is given twice", columnNames[c])
		}
		seen[c] = true
		st.cols = append(st.cols, c)
		if !p.acceptPunct(",") {
			break
		}
	}
	if err := p.expectPunct(")"); err != nil {
		return err
	}
	switch {
	case !seen[colKey] || !seen[colValue]:
		return p.fail("a put needs key and value")
	case seen[colExpiration] && seen[colTTL]:
		return p.fail("give expiration or expiration_ttl, not both")
	}
	if err := p.expect("VALUES"); err != nil {
		return err
	}
	for {
		if err := p.expectPunct("("); err != nil {
			return err
		}
		row := make([]operand, 0, len(st.cols))
		for i, c := range st.cols {
			if i > 0 {
				if err := p.expectPunct(","); err != nil {
					return err
				}
			}
			op, err := p.operand(c)
			if err != nil {
				return err
			}
			row = append(row, op)
		}
		if err := p.expectPunct(")"); err != nil {
			return err
		}
		st.rows = append(st.rows, row)
		if !p.acceptPunct(",") {
			break
		}
	}
	if p.peek().is("ON") {
		return p.fail("INSERT INTO kv always overwrites (a KV put): leave out ON CONFLICT")
	}
	if p.peek().is("RETURNING") {
		return p.fail("RETURNING is not supported")
	}
	return p.end()
}

// delete reads DELETE FROM kv WHERE key = x.
func (p *parser) delete() error {
	p.st.verb = vDelete
	if err := p.expect("FROM"); err != nil {
		return err
	}
	if err := p.table(); err != nil {
		return err
	}
	if err := p.expect("WHERE"); err != nil {
		return p.fail("DELETE needs WHERE key = $1")
	}
	if !p.isColumn(colKey) {
		return p.fail("DELETE needs WHERE key = $1")
	}
	p.column(false)
	if err := p.expectPunct("="); err != nil {
		return p.fail("DELETE needs WHERE key = $1")
	}
	op, err := p.operand(colKey)
	if err != nil {
		return err
	}
	p.st.key = op
	return p.end()
}

package classify

import (
	"slices"
	"strings"
)

// The session effects of MySQL text, for the pool side, which runs them on every command: a
// lexer of bytes (mysqllexer.go), not the TiDB parser ClassifyMySQL uses, because the pool must
// replay each assignment as its source text (the parser keeps no text of an expression, and
// its Restore rewrites it), MariaDB's statements the parser does not know (XA, HANDLER, SET
// STATEMENT ... FOR, GET_ADVISORY_LOCK) must count, and the common statement that does nothing
// to its session must cost no allocation.

// MySQLAssignment is one assignment a session made that its connections must carry.
type MySQLAssignment struct {
	// Key names what it sets: "names", a lower-case system variable, "@name" for a user
	// variable, "tx isolation" or "tx access".
	Key string
	// Text is the assignment as it goes into a SET statement, or, with Alone, a statement of
	// its own (SET SESSION TRANSACTION ...), which can't join the list of one SET.
	Text  string
	Alone bool
}

// MySQLEffect is what one MySQL statement does to its session when it succeeds.
type MySQLEffect struct {
	Use  string            // USE db
	Sets []MySQLAssignment // SET assignments a pool can replay
	Vars []string          // user variables assigned values nobody knows: read back
	Pin  string            // the feature that ties the session to its connection for good
	// Dirty: changes state that can't be replayed: the connection is reset after.
	Dirty bool
	XA    int8 // 1 starts an XA transaction, -1 ends it: the connection is kept in between
	// Hold: the next statement may ask about this one (FOUND_ROWS()).
	Hold bool
	// HoldTx: SET TRANSACTION shapes the next transaction only, which must run on the same
	// connection.
	HoldTx bool
	// Catalog: creates, alters, renames or drops a table, view, trigger or database, which
	// may change the relations whose rows change together.
	Catalog bool
}

// Zero reports whether the effect leaves the session alone.
func (e MySQLEffect) Zero() bool {
	return e.Use == "" && len(e.Sets) == 0 && len(e.Vars) == 0 && e.Pin == "" && !e.Dirty && e.XA == 0 && !e.Hold &&
		!e.HoldTx && !e.Catalog
}

// AppendMySQLEffects appends the effects of each statement in sql, in order. The common statement
// that does nothing to the session costs no allocation.
func AppendMySQLEffects(dst []MySQLEffect, sql []byte) []MySQLEffect {
	if myPlain(sql) {
		return append(dst, MySQLEffect{})
	}
	return append(dst, mySessionEffects(string(sql))...)
}

// plain reports whether sql is one statement that plainly does nothing to the session.
func myPlain(sql []byte) bool {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '(') {
		i++
	}
	j := i
	for j < len(sql) && myWordByte(sql[j]) {
		j++
	}
	first := sql[i:j]
	if !slices.ContainsFunc(myPlainStarts, func(w string) bool { return asciiEqualFold(first, w) }) {
		return false
	}
	for k, c := range sql {
		switch {
		case c == '@' || c == ';':
			return false
		case (c == 'l' || c == 'L') && k+4 <= len(sql) && asciiEqualFold(sql[k:k+4], "LOCK"):
			return false // GET_LOCK and friends pin; LOCK IN SHARE MODE merely looks alike
		case (c == 'f' || c == 'F') && k+10 <= len(sql) && asciiEqualFold(sql[k:k+10], "FOUND_ROWS"):
			return false // SQL_CALC_FOUND_ROWS keeps the connection for FOUND_ROWS()
		}
	}
	return true
}

// myPlainStarts are first words of statements that, without user variables, a second statement,
// a lock function or SQL_CALC_FOUND_ROWS, do nothing to the session.
var myPlainStarts = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "COMMIT",
	"ROLLBACK", "START", "SHOW", "WITH", "EXPLAIN", "DESCRIBE", "DO", "SAVEPOINT", "RELEASE"}

func asciiEqualFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// mySessionEffects returns the effects of each statement in sql, in order.
func mySessionEffects(sql string) []MySQLEffect {
	l := myLexer{s: sql}
	var effects []MySQLEffect
	var toks []myToken
	for {
		t, ok := l.next()
		if !ok || t.kind == mtPunct && t.text == ";" {
			if len(toks) > 0 {
				effects = append(effects, myStatementEffect(sql, toks))
			}
			toks = toks[:0]
			if !ok {
				return effects
			}
			continue
		}
		toks = append(toks, t)
	}
}

func myIsWord(t myToken, w string) bool { return t.kind == mtWord && t.text == w }

// myStatementEffect classifies one statement by its tokens.
func myStatementEffect(sql string, toks []myToken) MySQLEffect {
	var e MySQLEffect
	// Anywhere in a statement: user locks, assignments to user variables.
	for i, t := range toks {
		switch {
		case t.kind == mtWord && (t.text == "GET_LOCK" || t.text == "GET_ADVISORY_LOCK") && i+1 < len(toks) && toks[i+1].text == "(":
			e.Pin = "get_lock"
		case t.kind == mtUserVar && i+1 < len(toks) && toks[i+1].text == ":=":
			e.Vars = append(e.Vars, t.text)
		case myIsWord(t, "SQL_CALC_FOUND_ROWS"):
			e.Hold = true
		case myIsWord(t, "INTO"):
			for j := i + 1; j < len(toks) && (toks[j].kind == mtUserVar || toks[j].text == ","); j++ {
				if toks[j].kind == mtUserVar {
					e.Vars = append(e.Vars, toks[j].text)
				}
			}
		}
	}
	first := toks[0]
	if first.kind != mtWord {
		return e
	}
	switch first.text {
	case "USE":
		if len(toks) >= 2 && (toks[1].kind == mtWord || toks[1].kind == mtQuoted) {
			e.Use = toks[1].text
			if toks[1].kind == mtWord {
				e.Use = sql[toks[1].start:toks[1].end]
			}
		}
	case "SET":
		mySetEffect(sql, toks[1:], &e)
		// @x := 'a' at the top of a SET is a constant after all.
		vars := e.Vars[:0]
		for _, v := range e.Vars {
			if !slices.ContainsFunc(e.Sets, func(s MySQLAssignment) bool { return s.Key == "@"+v }) {
				vars = append(vars, v)
			}
		}
		if e.Vars = vars; len(vars) == 0 {
			e.Vars = nil
		}
	case "LOCK":
		if len(toks) >= 2 && (myIsWord(toks[1], "TABLES") || myIsWord(toks[1], "TABLE")) {
			e.Pin = "lock_tables"
		}
	case "CREATE", "ALTER", "DROP", "RENAME":
		temporary := len(toks) >= 3 && myIsWord(toks[1], "TEMPORARY")
		if temporary && first.text == "CREATE" {
			e.Pin = "temporary_table"
		}
		// A temporary table has no views, triggers nor foreign keys of its own.
		e.Catalog = !temporary && myChangesRelations(toks[1:])
	case "PREPARE", "EXECUTE", "DEALLOCATE":
		e.Pin = "prepare"
	case "HANDLER":
		e.Pin = "handler"
	case "CALL":
		e.Dirty = true
	case "XA":
		// The origin does not flag an XA transaction in its status: the session holds its
		// connection from XA START to XA COMMIT or ROLLBACK.
		if len(toks) >= 2 {
			switch toks[1].text {
			case "START", "BEGIN":
				e.XA = 1
			case "COMMIT", "ROLLBACK":
				e.XA = -1
			}
		}
	}
	return e
}

// myChangesRelations reports whether the words after CREATE, ALTER, DROP or RENAME name a
// table, view, trigger or database. Anywhere in the statement: the words before the object
// (OR REPLACE, ALGORITHM=, DEFINER=, SQL SECURITY) vary, and a needless re-read costs only time.
func myChangesRelations(toks []myToken) bool {
	for _, t := range toks {
		if myIsWord(t, "TABLE") || myIsWord(t, "TABLES") || myIsWord(t, "VIEW") || myIsWord(t, "TRIGGER") ||
			myIsWord(t, "DATABASE") || myIsWord(t, "SCHEMA") {
			return true
		}
	}
	return false
}

// mySetEffect classifies the assignments of a SET statement (toks after SET).
func mySetEffect(sql string, toks []myToken, e *MySQLEffect) {
	if len(toks) == 0 {
		return
	}
	switch {
	case myIsWord(toks[0], "STATEMENT"): // SET STATEMENT ... FOR: this statement only
		return
	case myIsWord(toks[0], "PASSWORD"):
		return
	case myIsWord(toks[0], "ROLE"), myIsWord(toks[0], "DEFAULT"):
		// ROLE changes privileges: not replayed, the connection is reset after.
		e.Dirty = true
		return
	case myIsWord(toks[0], "TRANSACTION"):
		// The next transaction only: it runs on this connection.
		e.HoldTx, e.Dirty = true, true
		return
	case len(toks) > 1 && myIsWord(toks[1], "TRANSACTION"):
		if myIsWord(toks[0], "SESSION") || myIsWord(toks[0], "LOCAL") {
			// The session's transaction characteristics, each replayed by a statement of its own.
			for _, c := range mySplitTop(toks[2:], ",") {
				switch {
				case len(c) == 0:
				case myIsWord(c[0], "ISOLATION"):
					e.Sets = append(e.Sets, MySQLAssignment{"tx isolation", "SET SESSION TRANSACTION " + sql[c[0].start:c[len(c)-1].end], true})
				case myIsWord(c[0], "READ"):
					e.Sets = append(e.Sets, MySQLAssignment{"tx access", "SET SESSION TRANSACTION " + sql[c[0].start:c[len(c)-1].end], true})
				default:
					e.Dirty = true
				}
			}
		}
		return
	}
	scope := "SESSION"
	for _, a := range mySplitTop(toks, ",") {
		scope = myAssignment(sql, a, scope, e)
	}
}

// myAssignment classifies one assignment a of a SET statement, in scope (the last GLOBAL or
// SESSION before it), and returns the scope for the next one.
func myAssignment(sql string, a []myToken, scope string, e *MySQLEffect) string {
	if len(a) > 0 && a[0].kind == mtWord {
		switch a[0].text {
		case "GLOBAL", "PERSIST", "PERSIST_ONLY", "SESSION", "LOCAL":
			scope = a[0].text
			if scope == "LOCAL" {
				scope = "SESSION"
			}
			a = a[1:]
		}
	}
	switch {
	case len(a) == 0:
		e.Dirty = true
		return scope
	case myIsWord(a[0], "NAMES") || myIsWord(a[0], "CHARSET") || myIsWord(a[0], "CHARACTER") && len(a) > 1 && myIsWord(a[1], "SET"):
		e.Sets = append(e.Sets, MySQLAssignment{Key: "names", Text: sql[a[0].start:a[len(a)-1].end]})
		return scope
	case myIsWord(a[0], "TRANSACTION"), // not where SET's grammar has it
		len(a) < 3 || a[1].text != "=" && a[1].text != ":=":
		e.Dirty = true
		return scope
	}
	value := sql[a[2].start:a[len(a)-1].end]
	switch a[0].kind {
	case mtUserVar:
		if len(a) == 3 && myIsLiteral(a[2]) || len(a) == 4 && a[2].text == "-" && a[3].kind == mtNumber {
			e.Sets = append(e.Sets, MySQLUserVar(a[0].text, value))
		} else {
			e.Vars = append(e.Vars, a[0].text)
		}
	case mtSysVar:
		name, sc := a[0].text, scope
		switch {
		case strings.HasPrefix(name, "global."):
			sc = "GLOBAL"
		case strings.HasPrefix(name, "session."), strings.HasPrefix(name, "local."):
			sc = "SESSION"
			name = name[strings.IndexByte(name, '.')+1:]
		case strings.Contains(name, "."):
			sc = "GLOBAL"
		}
		switch {
		case name == "": // SET @@ = 0: an error at the origin, never replayed
			e.Dirty = true
		case sc == "SESSION":
			e.Sets = append(e.Sets, MySQLAssignment{Key: name, Text: "@@SESSION." + name + " = " + value})
		}
	case mtWord, mtQuoted:
		if name := strings.ToLower(a[0].text); name == "" {
			e.Dirty = true // SET `` = 0
		} else if scope == "SESSION" {
			e.Sets = append(e.Sets, MySQLAssignment{Key: name, Text: "@@SESSION." + name + " = " + value})
		}
	default:
		e.Dirty = true
	}
	return scope
}

// myIsLiteral reports whether t is a constant the pool may replay as written.
func myIsLiteral(t myToken) bool {
	switch t.kind {
	case mtString, mtNumber:
		return true
	case mtWord:
		return t.text == "NULL" || t.text == "TRUE" || t.text == "FALSE"
	}
	return false
}

// mySplitTop splits toks at sep outside parentheses.
func mySplitTop(toks []myToken, sep string) [][]myToken {
	var out [][]myToken
	depth, from := 0, 0
	for i, t := range toks {
		switch {
		case t.kind != mtPunct:
		case t.text == "(":
			depth++
		case t.text == ")":
			depth--
		case t.text == sep && depth == 0:
			out = append(out, toks[from:i])
			from = i + 1
		}
	}
	return append(out, toks[from:])
}

// MySQLUserVar is the assignment of value (SQL text) to the user variable name.
func MySQLUserVar(name, value string) MySQLAssignment {
	return MySQLAssignment{Key: "@" + name, Text: QuoteMySQLUserVar(name) + " = " + value}
}

// QuoteMySQLUserVar writes a user variable's name so that any name reads back the same: as is when
// it is a plain name, which simpler servers (d1, kv) also take, else quoted.
func QuoteMySQLUserVar(name string) string {
	plain := name != ""
	for i := 0; i < len(name); i++ {
		plain = plain && (myWordByte(name[i]) && name[i] < 0x80 || name[i] == '.')
	}
	if plain {
		return "@" + name
	}
	return "@`" + strings.ReplaceAll(name, "`", "``") + "`"
}

package mysqlpool

import (
	"slices"
	"strings"
)

// setting is one assignment a session made that its connections must carry: key names what it
// sets ("names", a lower-case system variable, "@name" for a user variable), text is the
// assignment as it goes into a SET statement.
type setting struct {
	key, text string
	// alone: text is a statement of its own (SET SESSION TRANSACTION ...), which can't join
	// the list of assignments of one SET.
	alone bool
}

// effect is what one statement does to the session when it succeeds.
type effect struct {
	use   string    // USE db
	sets  []setting // SET assignments the pool can replay
	vars  []string  // user variables assigned values the pool does not know: read back
	pin   string    // the feature that ties the session to its connection for good
	dirty bool      // changes state the pool cannot replay: reset the connection after
	xa    int8      // 1 starts an XA transaction, -1 ends it: the lease is kept in between
	hold  bool      // the next statement may ask about this one (FOUND_ROWS()): keep the lease for it
	// holdTx: SET TRANSACTION shapes the next transaction only; the lease is kept until the
	// next command, which starts it (and IN_TRANS then keeps the lease).
	holdTx bool
	// catalog: creates, alters, renames or drops a table, view, trigger or database, which
	// may change the relations whose rows change together (Pool.Related).
	catalog bool
}

func (e effect) zero() bool {
	return e.use == "" && len(e.sets) == 0 && len(e.vars) == 0 && e.pin == "" && !e.dirty && e.xa == 0 && !e.hold && !e.holdTx &&
		!e.catalog
}

// tokKind classifies a token of the small SQL lexer.
type tokKind uint8

const (
	tWord   tokKind = iota // keyword or identifier
	tQuoted                // `identifier`
	tString                // 'string' or "string"
	tNumber
	tUserVar // @name, @`name`, @'name'
	tSysVar  // @@name, @@session.name
	tPunct   // anything else, one or two characters (:=)
)

type token struct {
	kind       tokKind
	start, end int    // in the statement text
	text       string // words upper-cased; variables without their @ or quotes, lower-cased for @@
}

// lexer splits SQL text into tokens, skipping comments; MySQL's executable comments
// (/*! ... */) count as code, since the server runs them.
type lexer struct {
	s   string
	pos int
}

func isWordByte(b byte) bool {
	return b == '_' || b == '$' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

// next returns the next token, or ok false at the end of the text.
func (l *lexer) next() (token, bool) {
	s := l.s
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			l.pos++
			continue
		case c == '#' || c == '-' && strings.HasPrefix(s[l.pos:], "-- ") || c == '-' && (s[l.pos:] == "--" || strings.HasPrefix(s[l.pos:], "--\n") || strings.HasPrefix(s[l.pos:], "--\t")):
			if i := strings.IndexByte(s[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(s)
			}
			continue
		case c == '/' && strings.HasPrefix(s[l.pos:], "/*!"):
			l.pos += 3
			for l.pos < len(s) && s[l.pos] >= '0' && s[l.pos] <= '9' {
				l.pos++
			}
			continue
		case c == '/' && strings.HasPrefix(s[l.pos:], "/*"):
			if i := strings.Index(s[l.pos+2:], "*/"); i >= 0 {
				l.pos += i + 4
			} else {
				l.pos = len(s)
			}
			continue
		case c == '*' && strings.HasPrefix(s[l.pos:], "*/"):
			l.pos += 2 // the end of an executable comment
			continue
		}
		start := l.pos
		switch {
		case c == '\'' || c == '"':
			l.pos = skipQuoted(s, l.pos, c)
			return token{kind: tString, start: start, end: l.pos}, true
		case c == '`':
			l.pos = skipQuoted(s, l.pos, c)
			return token{kind: tQuoted, start: start, end: l.pos, text: unquote(s[start:l.pos])}, true
		case c == '@' && strings.HasPrefix(s[l.pos:], "@@"):
			l.pos += 2
			for l.pos < len(s) && (isWordByte(s[l.pos]) || s[l.pos] == '.') {
				l.pos++
			}
			return token{kind: tSysVar, start: start, end: l.pos, text: strings.ToLower(s[start+2 : l.pos])}, true
		case c == '@':
			l.pos++
			if l.pos < len(s) && (s[l.pos] == '`' || s[l.pos] == '\'' || s[l.pos] == '"') {
				l.pos = skipQuoted(s, l.pos, s[l.pos])
				return token{kind: tUserVar, start: start, end: l.pos, text: unquote(s[start+1 : l.pos])}, true
			}
			for l.pos < len(s) && (isWordByte(s[l.pos]) || s[l.pos] == '.') {
				l.pos++
			}
			return token{kind: tUserVar, start: start, end: l.pos, text: s[start+1 : l.pos]}, true
		case c >= '0' && c <= '9' || c == '.' && l.pos+1 < len(s) && s[l.pos+1] >= '0' && s[l.pos+1] <= '9':
			for l.pos < len(s) && (isWordByte(s[l.pos]) || s[l.pos] == '.') {
				l.pos++
			}
			return token{kind: tNumber, start: start, end: l.pos}, true
		case isWordByte(c):
			for l.pos < len(s) && isWordByte(s[l.pos]) {
				l.pos++
			}
			return token{kind: tWord, start: start, end: l.pos, text: strings.ToUpper(s[start:l.pos])}, true
		case c == ':' && strings.HasPrefix(s[l.pos:], ":="):
			l.pos += 2
			return token{kind: tPunct, start: start, end: l.pos, text: ":="}, true
		}
		l.pos++
		return token{kind: tPunct, start: start, end: l.pos, text: s[start:l.pos]}, true
	}
	return token{}, false
}

// skipQuoted returns the position after the quoted run starting at i (backslash escapes and
// doubled quotes inside), or the end of s if it is not closed.
func skipQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// unquote strips the quotes around a quoted name and undoubles quotes inside.
func unquote(s string) string {
	if len(s) < 2 {
		return s
	}
	q := s[:1]
	return strings.ReplaceAll(s[1:len(s)-1], q+q, q)
}

// plainStarts are first words of statements that, without user variables, a second statement,
// a lock function or SQL_CALC_FOUND_ROWS, do nothing to the session.
var plainStarts = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "COMMIT",
	"ROLLBACK", "START", "SHOW", "WITH", "EXPLAIN", "DESCRIBE", "DO", "SAVEPOINT", "RELEASE"}

// appendEffects appends the effects of each statement in sql, in order. The common statement
// that does nothing to the session costs no allocation.
func appendEffects(dst []effect, sql []byte) []effect {
	if plain(sql) {
		return append(dst, effect{})
	}
	return append(dst, analyze(string(sql))...)
}

// plain reports whether sql is one statement that plainly does nothing to the session.
func plain(sql []byte) bool {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '(') {
		i++
	}
	j := i
	for j < len(sql) && isWordByte(sql[j]) {
		j++
	}
	first := sql[i:j]
	if !slices.ContainsFunc(plainStarts, func(w string) bool { return asciiEqualFold(first, w) }) {
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

// analyze returns the effects of each statement in sql, in order.
func analyze(sql string) []effect {
	l := lexer{s: sql}
	var effects []effect
	var toks []token
	for {
		t, ok := l.next()
		if !ok || t.kind == tPunct && t.text == ";" {
			if len(toks) > 0 {
				effects = append(effects, statementEffect(sql, toks))
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

func isWord(t token, w string) bool { return t.kind == tWord && t.text == w }

// statementEffect classifies one statement by its tokens.
func statementEffect(sql string, toks []token) effect {
	var e effect
	// Anywhere in a statement: user locks, assignments to user variables.
	for i, t := range toks {
		switch {
		case t.kind == tWord && (t.text == "GET_LOCK" || t.text == "GET_ADVISORY_LOCK") && i+1 < len(toks) && toks[i+1].text == "(":
			e.pin = "get_lock"
		case t.kind == tUserVar && i+1 < len(toks) && toks[i+1].text == ":=":
			e.vars = append(e.vars, t.text)
		case isWord(t, "SQL_CALC_FOUND_ROWS"):
			e.hold = true
		case isWord(t, "INTO"):
			for j := i + 1; j < len(toks) && (toks[j].kind == tUserVar || toks[j].text == ","); j++ {
				if toks[j].kind == tUserVar {
					e.vars = append(e.vars, toks[j].text)
				}
			}
		}
	}
	first := toks[0]
	if first.kind != tWord {
		return e
	}
	switch first.text {
	case "USE":
		if len(toks) >= 2 && (toks[1].kind == tWord || toks[1].kind == tQuoted) {
			e.use = toks[1].text
			if toks[1].kind == tWord {
				e.use = sql[toks[1].start:toks[1].end]
			}
		}
	case "SET":
		setEffect(sql, toks[1:], &e)
		// @x := 'a' at the top of a SET is a constant after all.
		vars := e.vars[:0]
		for _, v := range e.vars {
			if !slices.ContainsFunc(e.sets, func(s setting) bool { return s.key == "@"+v }) {
				vars = append(vars, v)
			}
		}
		if e.vars = vars; len(vars) == 0 {
			e.vars = nil
		}
	case "LOCK":
		if len(toks) >= 2 && (isWord(toks[1], "TABLES") || isWord(toks[1], "TABLE")) {
			e.pin = "lock_tables"
		}
	case "CREATE", "ALTER", "DROP", "RENAME":
		temporary := len(toks) >= 3 && isWord(toks[1], "TEMPORARY")
		if temporary && first.text == "CREATE" {
			e.pin = "temporary_table"
		}
		// A temporary table has no views, triggers nor foreign keys of its own.
		e.catalog = !temporary && changesRelations(toks[1:])
	case "PREPARE", "EXECUTE", "DEALLOCATE":
		e.pin = "prepare"
	case "HANDLER":
		e.pin = "handler"
	case "CALL":
		e.dirty = true
	case "XA":
		// The origin does not flag an XA transaction in its status: the session holds its
		// connection from XA START to XA COMMIT or ROLLBACK.
		if len(toks) >= 2 {
			switch toks[1].text {
			case "START", "BEGIN":
				e.xa = 1
			case "COMMIT", "ROLLBACK":
				e.xa = -1
			}
		}
	}
	return e
}

// changesRelations reports whether the words after CREATE, ALTER, DROP or RENAME name a
// table, view, trigger or database. Anywhere in the statement: the words before the object
// (OR REPLACE, ALGORITHM=, DEFINER=, SQL SECURITY) vary, and a needless re-read costs only time.
func changesRelations(toks []token) bool {
	for _, t := range toks {
		if isWord(t, "TABLE") || isWord(t, "TABLES") || isWord(t, "VIEW") || isWord(t, "TRIGGER") ||
			isWord(t, "DATABASE") || isWord(t, "SCHEMA") {
			return true
		}
	}
	return false
}

// setEffect classifies the assignments of a SET statement (toks after SET).
func setEffect(sql string, toks []token, e *effect) {
	if len(toks) == 0 {
		return
	}
	switch {
	case isWord(toks[0], "STATEMENT"): // SET STATEMENT ... FOR: this statement only
		return
	case isWord(toks[0], "PASSWORD"):
		return
	case isWord(toks[0], "ROLE"), isWord(toks[0], "DEFAULT"):
		// ROLE changes privileges: not replayed, the connection is reset after.
		e.dirty = true
		return
	case isWord(toks[0], "TRANSACTION"):
		// The next transaction only: it runs on this connection.
		e.holdTx, e.dirty = true, true
		return
	case len(toks) > 1 && isWord(toks[1], "TRANSACTION"):
		if isWord(toks[0], "SESSION") || isWord(toks[0], "LOCAL") {
			// The session's transaction characteristics, each replayed by a statement of its own.
			for _, c := range splitTop(toks[2:], ",") {
				switch {
				case len(c) == 0:
				case isWord(c[0], "ISOLATION"):
					e.sets = append(e.sets, setting{"tx isolation", "SET SESSION TRANSACTION " + sql[c[0].start:c[len(c)-1].end], true})
				case isWord(c[0], "READ"):
					e.sets = append(e.sets, setting{"tx access", "SET SESSION TRANSACTION " + sql[c[0].start:c[len(c)-1].end], true})
				default:
					e.dirty = true
				}
			}
		}
		return
	}
	scope := "SESSION"
	for _, a := range splitTop(toks, ",") {
		if len(a) == 0 {
			e.dirty = true
			continue
		}
		if a[0].kind == tWord {
			switch a[0].text {
			case "GLOBAL", "PERSIST", "PERSIST_ONLY", "SESSION", "LOCAL":
				scope = a[0].text
				if scope == "LOCAL" {
					scope = "SESSION"
				}
				a = a[1:]
			}
		}
		if len(a) == 0 {
			e.dirty = true
			continue
		}
		switch {
		case isWord(a[0], "NAMES") || isWord(a[0], "CHARSET") || isWord(a[0], "CHARACTER") && len(a) > 1 && isWord(a[1], "SET"):
			e.sets = append(e.sets, setting{key: "names", text: sql[a[0].start:a[len(a)-1].end]})
			continue
		case isWord(a[0], "TRANSACTION"):
			e.dirty = true // not where SET's grammar has it
			continue
		}
		if len(a) < 3 || a[1].text != "=" && a[1].text != ":=" {
			e.dirty = true
			continue
		}
		value := sql[a[2].start:a[len(a)-1].end]
		switch a[0].kind {
		case tUserVar:
			if len(a) == 3 && isLiteral(a[2]) || len(a) == 4 && a[2].text == "-" && a[3].kind == tNumber {
				e.sets = append(e.sets, setting{key: "@" + a[0].text, text: quoteUserVar(a[0].text) + " = " + value})
			} else {
				e.vars = append(e.vars, a[0].text)
			}
		case tSysVar:
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
			if sc == "SESSION" {
				e.sets = append(e.sets, setting{key: name, text: "@@SESSION." + name + " = " + value})
			}
		case tWord, tQuoted:
			if scope == "SESSION" {
				name := strings.ToLower(a[0].text)
				e.sets = append(e.sets, setting{key: name, text: "@@SESSION." + name + " = " + value})
			}
		default:
			e.dirty = true
		}
	}
}

// isLiteral reports whether t is a constant the pool may replay as written.
func isLiteral(t token) bool {
	switch t.kind {
	case tString, tNumber:
		return true
	case tWord:
		return t.text == "NULL" || t.text == "TRUE" || t.text == "FALSE"
	}
	return false
}

// splitTop splits toks at sep outside parentheses.
func splitTop(toks []token, sep string) [][]token {
	var out [][]token
	depth, from := 0, 0
	for i, t := range toks {
		switch {
		case t.kind != tPunct:
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

// quoteUserVar writes a user variable's name so that any name reads back the same: as is when
// it is a plain name, which simpler servers (d1, kv) also take, else quoted.
func quoteUserVar(name string) string {
	plain := name != ""
	for i := 0; i < len(name); i++ {
		plain = plain && (isWordByte(name[i]) && name[i] < 0x80 || name[i] == '.')
	}
	if plain {
		return "@" + name
	}
	return "@`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// sessionState is what a session set that its connections must carry.
type sessionState struct {
	settings []setting // oldest first; one per key
	stmts    []string  // the statements that replay them: one SET, then those alone
	key      string    // the statements joined: the connection fingerprint, "" for none
}

// apply records assignments, the last one of each key winning.
func (st *sessionState) apply(sets []setting) {
	if len(sets) == 0 {
		return
	}
	for _, s := range sets {
		for i, old := range st.settings {
			if old.key == s.key {
				st.settings = append(st.settings[:i], st.settings[i+1:]...)
				break
			}
		}
		st.settings = append(st.settings, s)
	}
	var b strings.Builder
	st.stmts = st.stmts[:0]
	for _, s := range st.settings {
		if s.alone {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("SET ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(s.text)
	}
	if b.Len() > 0 {
		st.stmts = append(st.stmts, b.String())
	}
	for _, s := range st.settings {
		if s.alone {
			st.stmts = append(st.stmts, s.text)
		}
	}
	st.key = strings.Join(st.stmts, "; ")
}

func (st *sessionState) clear() { *st = sessionState{} }

package classify

import "strings"

// Pin reasons: features that keep state on one origin connection for the rest of a session.
const (
	PinListen        = "listen"
	PinAdvisoryLock  = "advisory_lock"
	PinTempTable     = "temp_table"
	PinHoldCursor    = "hold_cursor"
	PinPrepare       = "prepare"
	PinAuthorization = "session_authorization"
	PinSetConfig     = "set_config"
)

// Setting is one session-level change to a run-time parameter.
type Setting struct {
	// Name is the parameter's lower-case name ("search_path", "timezone"), or "" with All.
	Name string
	// Stmt is the statement text that makes the change, to replay it on another connection.
	// It is empty for a reset.
	Stmt string
	// Reset means the parameter goes back to its default (RESET name, SET name TO DEFAULT).
	Reset bool
	// All means every parameter goes back to its default (RESET ALL, DISCARD ALL).
	All bool
}

// Effect is what a statement, or a string of statements, does to its session.
type Effect struct {
	// Settings are session-level SET and RESET statements, in order.
	Settings []Setting
	// Pin is the first reason the session needs one origin connection from now on, or "".
	Pin string
	// DropsPrepared means the statement deallocates protocol-level prepared statements
	// (DEALLOCATE ALL, DISCARD ALL).
	DropsPrepared bool
	// Statements counts the statements in the text (0 for an empty query).
	Statements int
	// CatalogChange means the statement creates, alters or drops functions (or an extension,
	// which brings functions), tables, views, triggers or rules: the function volatilities and
	// the relations whose rows change together (views, partitions, cascading foreign keys,
	// triggers) that the cache knows may be out of date.
	CatalogChange bool
}

// None reports whether the effect leaves session state alone.
func (e Effect) None() bool {
	return len(e.Settings) == 0 && e.Pin == "" && !e.DropsPrepared && !e.CatalogChange
}

// Session returns the session effect of query, which may hold several statements.
func Session(query string) Effect {
	var e Effect
	l := lexer{src: query}
	for {
		start, ok := l.next()
		for ok && start.kind == tokSemicolon {
			start, ok = l.next()
		}
		if !ok {
			return e
		}
		e.Statements++
		begin := l.pos - len(start.text)
		first := start
		var words [4]string // the first few words, for keyword checks
		n := 0
		if first.kind == tokWord {
			words[0], n = first.text, 1
		}
		prev := first
		for {
			t, ok := l.next()
			if !ok || t.kind == tokSemicolon {
				break
			}
			if n > 0 && n < len(words) && t.kind == tokWord {
				words[n] = t.text
				n++
			} else if n < len(words) {
				n = len(words) // keyword run ended: later words are not the statement's head
			}
			if t.kind == tokWord {
				statementWord(&e, prev, t)
				if len(t.text) == len("set_config") && strings.EqualFold(t.text, "set_config") && !setConfigIsLocal(&l) {
					pin(&e, PinSetConfig)
				}
			}
			prev = t
		}
		stmt := strings.TrimSpace(query[begin:min(l.pos, len(query))])
		stmt = strings.TrimSuffix(stmt, ";")
		statementHead(&e, words, stmt)
	}
}

// statementWord looks at one word in its context for effects that can appear anywhere in a
// statement: session advisory lock functions and SELECT ... INTO TEMP.
func statementWord(e *Effect, prev, t token) {
	if len(t.text) >= 16 && (t.text[0] == 'p' || t.text[0] == 'P') {
		switch strings.ToLower(t.text) {
		case "pg_advisory_lock", "pg_try_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock_shared":
			pin(e, PinAdvisoryLock)
		}
	}
	if prev.kind == tokWord && strings.EqualFold(prev.text, "into") &&
		(strings.EqualFold(t.text, "temp") || strings.EqualFold(t.text, "temporary")) {
		pin(e, PinTempTable)
	}
	if prev.kind == tokWord && strings.EqualFold(prev.text, "with") && strings.EqualFold(t.text, "hold") {
		pin(e, PinHoldCursor)
	}
}

// setConfigIsLocal reads the arguments of a set_config call from a copy of the lexer and
// reports whether its third argument is the literal true: a transaction-local setting. Anything
// else (false, a parameter, an expression) may change the session, which pins it.
func setConfigIsLocal(at *lexer) bool {
	l := *at
	t, ok := l.next()
	if !ok || t.text != "(" {
		return true // a column or name that is not the function call
	}
	depth, commas := 1, 0
	for {
		t, ok = l.next()
		if !ok || t.kind == tokSemicolon {
			return false
		}
		switch t.text {
		case "(":
			depth++
		case ")":
			if depth--; depth == 0 {
				return false
			}
		case ",":
			if depth == 1 {
				commas++
				if commas == 2 {
					arg, ok := l.next()
					if !ok || !(arg.kind == tokWord && is(arg.text, "true")) {
						return false
					}
					end, ok := l.next()
					return ok && end.text == ")"
				}
			}
		}
	}
}

func pin(e *Effect, reason string) {
	if e.Pin == "" {
		e.Pin = reason
	}
}

func is(w, kw string) bool { return strings.EqualFold(w, kw) }

// statementHead applies the effects decided by a statement's leading keywords.
func statementHead(e *Effect, w [4]string, stmt string) {
	switch {
	case is(w[0], "set"):
		setEffect(e, w, stmt)
	case is(w[0], "reset"):
		switch {
		case is(w[1], "all"):
			e.Settings = append(e.Settings, Setting{All: true})
		case is(w[1], "session") && is(w[2], "authorization"):
			// back to the connection's own user: nothing to follow
		case w[1] != "":
			e.Settings = append(e.Settings, Setting{Name: paramName(w[1:], stmt, 1), Reset: true})
		}
	case is(w[0], "listen"):
		pin(e, PinListen)
	case is(w[0], "prepare") && !is(w[1], "transaction"):
		pin(e, PinPrepare)
	case is(w[0], "create"):
		temp := false
		for _, x := range w[1:] {
			if is(x, "temp") || is(x, "temporary") {
				pin(e, PinTempTable)
				temp = true
			}
		}
		// A temporary table or view is the session's own: no other session's cache reads it.
		e.CatalogChange = e.CatalogChange || !temp && routine(w[1:])
	case is(w[0], "alter") || is(w[0], "drop"):
		e.CatalogChange = e.CatalogChange || routine(w[1:2])
	case is(w[0], "execute"):
		// SQL prepared statements live on the origin connection, where protocol-level ones
		// must be visible to them under the client's names: the pool pins the session.
		pin(e, PinPrepare)
	case is(w[0], "deallocate"):
		if is(w[1], "all") || (is(w[1], "prepare") && is(w[2], "all")) {
			e.DropsPrepared = true
		} else {
			pin(e, PinPrepare)
		}
	case is(w[0], "discard"):
		if is(w[1], "all") {
			e.DropsPrepared = true
			e.Settings = append(e.Settings, Setting{All: true})
		}
	}
}

// routine reports whether the object words of a CREATE, ALTER or DROP name an object the
// cache's catalog covers: a function-like one ("or replace function", "function", "procedure",
// "aggregate", "extension") or a table, view, trigger or rule.
func routine(w []string) bool {
	for _, x := range w {
		if is(x, "function") || is(x, "procedure") || is(x, "aggregate") || is(x, "extension") ||
			is(x, "table") || is(x, "view") || is(x, "trigger") || is(x, "rule") {
			return true
		}
	}
	return false
}

// setEffect handles SET statements: only session-level ones follow the client.
func setEffect(e *Effect, w [4]string, stmt string) {
	rest := w[1:]
	skip := 1
	if is(rest[0], "session") {
		skip++
		if is(rest[1], "authorization") {
			pin(e, PinAuthorization)
			return
		}
		rest = rest[1:]
	}
	if rest[0] == "" || is(rest[0], "local") || is(rest[0], "transaction") || is(rest[0], "constraints") {
		return
	}
	name := paramName(rest, stmt, skip)
	if name == "characteristics" {
		name = "session_characteristics"
	}
	s := Setting{Name: name, Stmt: stmt}
	if setsDefault(stmt) {
		s = Setting{Name: name, Reset: true}
	}
	e.Settings = append(e.Settings, s)
}

// paramName maps the words after SET or RESET to the parameter they change. A dotted custom
// parameter (app.tenant) is read from stmt after its first skip words.
func paramName(w []string, stmt string, skip int) string {
	switch {
	case is(w[0], "time") && len(w) > 1 && is(w[1], "zone"):
		return "timezone"
	case is(w[0], "names"):
		return "client_encoding"
	case is(w[0], "schema"):
		return "search_path"
	case is(w[0], "xml") && len(w) > 1 && is(w[1], "option"):
		return "xmloption"
	}
	l := lexer{src: stmt}
	for range skip {
		l.next()
	}
	var name strings.Builder
	for {
		t, ok := l.next()
		if !ok || t.kind != tokWord {
			break
		}
		name.WriteString(identifier(t.text))
		if dot, ok := l.next(); !ok || dot.text != "." {
			break
		}
		name.WriteByte('.')
	}
	return name.String()
}

// identifier returns a word as PostgreSQL names it: quoted words keep their case.
func identifier(w string) string {
	if len(w) > 1 && w[0] == '"' {
		return strings.ReplaceAll(w[1:len(w)-1], `""`, `"`)
	}
	return strings.ToLower(w)
}

// setsDefault reports whether a SET statement's value is the bare keyword DEFAULT.
func setsDefault(stmt string) bool {
	l := lexer{src: stmt}
	var last, prev token
	for {
		t, ok := l.next()
		if !ok {
			break
		}
		prev, last = last, t
	}
	return last.kind == tokWord && is(last.text, "default") &&
		((prev.kind == tokWord && is(prev.text, "to")) || prev.text == "=")
}

// PlainRead reports whether query is one statement that starts with SELECT, VALUES, TABLE or
// SHOW and selects INTO nothing: a read, unless a function it calls writes. It returns the
// names of what it calls (words followed by a parenthesis, keywords among them), so the caller
// can check them against the catalog without a full parse. It costs one pass of the lexer.
func PlainRead(query string) (calls []string, ok bool) {
	l := lexer{src: query}
	first, ok := l.next()
	if !ok || first.kind != tokWord {
		return nil, false
	}
	switch strings.ToLower(first.text) {
	case "select", "values", "table", "show":
	default:
		return nil, false
	}
	prev := first
	for {
		t, ok := l.next()
		if !ok {
			return calls, true
		}
		switch {
		case t.kind == tokSemicolon:
			if rest, more := l.next(); more && rest.kind != tokSemicolon {
				return nil, false // a second statement
			}
			return calls, true
		case t.kind == tokWord && is(t.text, "into"):
			return nil, false
		case t.text == "(" && prev.kind == tokWord:
			calls = append(calls, strings.ToLower(prev.text))
		}
		prev = t
	}
}

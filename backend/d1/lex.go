package d1

import (
	"strings"
)

// token kinds of the small SQLite lexer below. It is not a parser: it finds what a statement
// starts with (for command tags and the statements PostgreSQL clients send that SQLite lacks),
// where such a statement ends, and the parameters' neighbours for type inference. Strings,
// quoted identifiers and comments are skipped exactly as SQLite does, so a ';' or keyword inside
// them is never mistaken. It stays apart from pgserver.Lex because the dialect differs: SQLite
// reads [x] and `x` identifiers, x'..' blobs, ?NNN, :x and @x parameters, and finds errors
// itself, where pgserver's lexer refuses what PostgreSQL would. The session statements (SET,
// RESET, SHOW, set_config), which are PostgreSQL's, are read with pgserver's.
const (
	tkEOF = iota
	tkWord
	tkQuoted // "x", [x] or `x`: an identifier
	tkString // 'x' or x'..'
	tkNumber
	tkParam // $1, ?1, ?, :x, @x, $x
	tkPunct // operators and punctuation, one to three characters
	tkSemi
)

type token struct {
	kind       int
	start, end int // byte span in the statement text
}

func (t token) text(s string) string { return s[t.start:t.end] }

// is reports whether t is the keyword kw (upper case), case-insensitively.
func (t token) is(s, kw string) bool {
	return t.kind == tkWord && strings.EqualFold(s[t.start:t.end], kw)
}

// lexer yields the tokens of s from off, skipping whitespace and comments.
type lexer struct {
	s   string
	off int
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func (l *lexer) next() token {
	s := l.s
	i := l.off
	// Whitespace and comments.
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				i = len(s)
			} else {
				i += j + 4
			}
		default:
			goto tok
		}
	}
tok:
	if i >= len(s) {
		l.off = len(s)
		return token{kind: tkEOF, start: len(s), end: len(s)}
	}
	start := i
	c := s[i]
	kind := tkPunct
	switch {
	case c == ';':
		i++
		kind = tkSemi
	case c == '\'':
		i = skipQuoted(s, i, '\'')
		kind = tkString
	case c == '"' || c == '`':
		i = skipQuoted(s, i, c)
		kind = tkQuoted
	case c == '[':
		if j := strings.IndexByte(s[i:], ']'); j >= 0 {
			i += j + 1
		} else {
			i = len(s)
		}
		kind = tkQuoted
	case (c == 'x' || c == 'X') && i+1 < len(s) && s[i+1] == '\'':
		i = skipQuoted(s, i+1, '\'')
		kind = tkString
	case '0' <= c && c <= '9' || c == '.' && i+1 < len(s) && '0' <= s[i+1] && s[i+1] <= '9':
		for i < len(s) && (isIdentByte(s[i]) || s[i] == '.' ||
			(s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E')) {
			i++
		}
		kind = tkNumber
	case c == '?' || c == '$' || c == ':' || c == '@' || c == '#':
		i++
		for i < len(s) && isIdentByte(s[i]) {
			i++
		}
		if i == start+1 && c != '?' {
			kind = tkPunct
			if c == ':' && i < len(s) && s[i] == ':' { // PostgreSQL's ::cast
				i++
			}
		} else {
			kind = tkParam
		}
	case isIdentByte(c):
		for i < len(s) && isIdentByte(s[i]) {
			i++
		}
		kind = tkWord
	default:
		i++
		if i < len(s) {
			two := s[start : i+1]
			switch two {
			case "==", "!=", "<>", "<=", ">=", "||", "<<", ">>", "->":
				i++
				if two == "->" && i < len(s) && s[i] == '>' {
					i++
				}
			}
		}
	}
	l.off = i
	return token{kind: kind, start: start, end: i}
}

// skipQuoted returns the offset just past the quoted run that starts at s[i]; a doubled quote
// stands for itself.
func skipQuoted(s string, i int, q byte) int {
	for i++; i < len(s); i++ {
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(s)
}

// statementEnd returns the offset just past the ';' that ends the statement starting at off, or
// len(s). It is used only for the statements this package answers itself, which hold no nested
// statement (a CREATE TRIGGER body is always left to SQLite, whose tail handling is exact).
func statementEnd(s string, off int) int {
	l := lexer{s: s, off: off}
	for {
		t := l.next()
		switch t.kind {
		case tkEOF:
			return len(s)
		case tkSemi:
			return t.end
		}
	}
}

// tokens lexes a whole statement, without its terminating ';'.
func tokens(s string) []token {
	l := lexer{s: s}
	var ts []token
	for {
		t := l.next()
		if t.kind == tkEOF || t.kind == tkSemi {
			return ts
		}
		ts = append(ts, t)
	}
}

// kind of statement, as far as the session needs to know.
type stmtKind uint8

const (
	kEmpty stmtKind = iota
	kOther          // anything else SQLite runs; the tag comes from its first words
	kSelect
	kInsert
	kUpdate
	kDelete
	kBegin       // BEGIN / START TRANSACTION, PostgreSQL options dropped
	kBeginNative // BEGIN DEFERRED | IMMEDIATE | EXCLUSIVE, passed to SQLite as written
	kCommit      // COMMIT / END
	kRollback    // ROLLBACK / ABORT
	kRollbackTo  // ROLLBACK TO [SAVEPOINT] x, passed to SQLite
	kSet         // SET x = y, SET x TO y, SET SESSION x ..., SET LOCAL x ...
	kReset       // RESET x | RESET ALL
	kShow        // SHOW x
	kDiscard     // DISCARD ALL
	kDeallocate  // DEALLOCATE [PREPARE] name | ALL
	kSetConfig   // SELECT [pg_catalog.]set_config('x', 'y', false)[, ...]
)

// answeredHere reports whether the session answers the statement itself, without SQLite.
func (k stmtKind) answeredHere() bool {
	switch k {
	case kBegin, kBeginNative, kCommit, kRollback, kSet, kReset, kShow, kDiscard, kDeallocate, kSetConfig:
		return true
	}
	return false
}

// classify finds the kind of the statement that starts at s[off:] and, for kOther, the command
// tag PostgreSQL would give it.
func classify(s string, off int) (stmtKind, string) {
	l := lexer{s: s, off: off}
	t := l.next()
	if t.kind == tkEOF || t.kind == tkSemi {
		return kEmpty, ""
	}
	if t.kind != tkWord {
		return kOther, "SELECT"
	}
	w := strings.ToUpper(t.text(s))
	switch w {
	case "SELECT":
		u := l.next()
		if u.kind == tkWord && (u.is(s, "set_config") || u.is(s, "pg_catalog") && isSetConfig(&l)) {
			return kSetConfig, "SELECT"
		}
		return kSelect, "SELECT"
	case "VALUES":
		return kSelect, "SELECT"
	case "WITH":
		return mainVerb(&l), ""
	case "INSERT", "REPLACE":
		return kInsert, "INSERT"
	case "UPDATE":
		return kUpdate, "UPDATE"
	case "DELETE":
		return kDelete, "DELETE"
	case "BEGIN":
		u := l.next()
		if u.is(s, "DEFERRED") || u.is(s, "IMMEDIATE") || u.is(s, "EXCLUSIVE") {
			return kBeginNative, "BEGIN"
		}
		return kBegin, "BEGIN"
	case "START":
		if l.next().is(s, "TRANSACTION") {
			return kBegin, "BEGIN"
		}
	case "COMMIT", "END":
		return kCommit, "COMMIT"
	case "ABORT":
		return kRollback, "ROLLBACK"
	case "ROLLBACK":
		u := l.next()
		if u.is(s, "TRANSACTION") || u.is(s, "WORK") {
			u = l.next()
		}
		if u.is(s, "TO") {
			return kRollbackTo, "ROLLBACK"
		}
		return kRollback, "ROLLBACK"
	case "SET":
		return kSet, "SET"
	case "RESET":
		return kReset, "RESET"
	case "SHOW":
		return kShow, "SHOW"
	case "DISCARD":
		return kDiscard, "DISCARD ALL"
	case "DEALLOCATE":
		return kDeallocate, "DEALLOCATE"
	case "CREATE", "DROP", "ALTER":
		// CREATE [TEMP|TEMPORARY|UNIQUE|VIRTUAL] TABLE|INDEX|VIEW|TRIGGER ...
		for {
			u := l.next()
			if u.kind != tkWord {
				return kOther, w
			}
			switch strings.ToUpper(u.text(s)) {
			case "TEMP", "TEMPORARY", "UNIQUE", "VIRTUAL":
				continue
			default:
				return kOther, w + " " + strings.ToUpper(u.text(s))
			}
		}
	case "SAVEPOINT", "RELEASE", "PRAGMA", "VACUUM", "ANALYZE", "REINDEX", "ATTACH", "DETACH", "EXPLAIN":
		return kOther, w
	}
	return kOther, w
}

// isSetConfig reports whether the lexer, just past "pg_catalog", is at ".set_config".
func isSetConfig(l *lexer) bool {
	dot := l.next()
	name := l.next()
	return dot.kind == tkPunct && dot.text(l.s) == "." && name.is(l.s, "set_config")
}

// mainVerb finds the statement a WITH clause belongs to: the first SELECT, VALUES, INSERT,
// REPLACE, UPDATE or DELETE outside parentheses.
func mainVerb(l *lexer) stmtKind {
	depth := 0
	for {
		t := l.next()
		switch t.kind {
		case tkEOF, tkSemi:
			return kSelect
		case tkPunct:
			switch t.text(l.s) {
			case "(":
				depth++
			case ")":
				depth--
			}
		case tkWord:
			if depth > 0 {
				continue
			}
			switch strings.ToUpper(t.text(l.s)) {
			case "SELECT", "VALUES":
				return kSelect
			case "INSERT", "REPLACE":
				return kInsert
			case "UPDATE":
				return kUpdate
			case "DELETE":
				return kDelete
			}
		}
	}
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '`') {
		return strings.ReplaceAll(s[1:len(s)-1], s[:1]+s[:1], s[:1])
	}
	if len(s) >= 2 && s[0] == '[' {
		return s[1 : len(s)-1]
	}
	return s
}

package classify

import "strings"

// What ShapeKey replaces.
type ShapeLiterals uint8

const (
	// Numbers replaces numeric literals only: a SELECT's classification (its tables, functions,
	// sequences, kind) does not depend on them, so it can be cached under the key.
	Numbers ShapeLiterals = iota
	// Constants replaces string literals too: a statement's fingerprint and normalized text
	// (placeholders for every constant) do not depend on them.
	Constants
)

// shapeWords are the statements ShapeKey keys: plain DML, where a literal is only ever a
// value. Elsewhere a literal can change what the statement does (EXPLAIN (ANALYZE 0), a
// type's modifier), and ShapeKey reports false.
var shapeWords = map[string]bool{"select": true, "with": true, "values": true, "insert": true, "update": true, "delete": true}

// ShapeKey returns a key for what sql does, with its literals replaced by markers that no SQL
// text can hold (a NUL byte, which PostgreSQL refuses in query text), so that results that
// depend only on a statement's shape are worked out (parsed) once per shape rather than once
// per text: pgbench's `SELECT abalance FROM pgbench_accounts WHERE aid = 4711` and `... = 12`
// share a key. Comments and spacing stay as written.
//
// It reports false, and the caller uses the text itself, when the text is not plain DML (see
// shapeWords), has a NUL, or has a backslash: with standard_conforming_strings off a
// backslash escapes a quote, and a lexer that cannot know the setting could take the inside
// of a string for a number. Keys for Numbers are a subset of keys for Constants; never mix
// the two in one map.
func ShapeKey(sql string, lits ShapeLiterals) (string, bool) {
	if strings.IndexByte(sql, 0) >= 0 || strings.IndexByte(sql, '\\') >= 0 {
		return "", false
	}
	l := lexer{src: sql}
	first, ok := l.next()
	if !ok || first.kind != tokWord || !shapeWords[strings.ToLower(first.text)] {
		return "", false
	}
	var b strings.Builder
	copied := 0 // sql[:copied] is in b
	for {
		tok, ok := l.next()
		if !ok {
			break
		}
		marker := literalMarker(tok.text, lits)
		if tok.kind != tokLiteral || marker == "" {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(sql))
		}
		start := l.pos - len(tok.text)
		b.WriteString(sql[copied:start])
		b.WriteString(marker)
		copied = l.pos
	}
	if copied == 0 {
		return sql, true
	}
	b.WriteString(sql[copied:])
	return b.String(), true
}

// literalMarker is what ShapeKey writes for the literal text, or "" to keep it: $1
// parameters are kept (they are already placeholders), strings only for Constants.
func literalMarker(text string, lits ShapeLiterals) string {
	switch c := text[0]; {
	case c >= '0' && c <= '9':
		if plainNumber(text) {
			return "\x00n"
		}
		return ""
	case c == '$':
		return "" // $1, or a lone $; a $$-quoted string is one too, and kept
	case lits == Constants:
		return "\x00s"
	}
	return ""
}

// plainNumber reports whether a literal the lexer read as a number is digits with at most one
// point. The lexer reads a number on into the word after it ("1into" in `SELECT 1into t`,
// which PostgreSQL reads as 1 INTO t): such a token, an exponent or a hex literal is kept
// whole in the key, since the word may change what the statement does.
func plainNumber(text string) bool {
	points := 0
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '.':
			points++
		case c < '0' || c > '9':
			return false
		}
	}
	return points <= 1
}

package kv

import "strings"

// token kinds of the lexer the statement matcher reads. It knows PostgreSQL's lexical rules as
// far as the supported statements need them: standard-conforming strings (a doubled quote
// stands for one, backslashes are literal), quoted identifiers, $n parameters, numbers, nested
// block comments. Anything else (escape strings, dollar quoting, operators beyond comparisons
// and casts) lexes as tokens the matcher then refuses.
const (
	tEOF = iota
	tWord
	tQuoted // "identifier"
	tString // 'text'
	tNumber
	tParam // $n
	tPunct
	tSemi
)

type token struct {
	kind int
	text string // as written, quotes included
	val  string // a string's or quoted identifier's content; a parameter's number
}

// is reports whether t is the keyword kw, case-insensitively.
func (t token) is(kw string) bool { return t.kind == tWord && strings.EqualFold(t.text, kw) }

// punct reports whether t is the punctuation p.
func (t token) punct(p string) bool { return t.kind == tPunct && t.text == p }

// lexError is text the lexer can't read: an unterminated string, identifier or comment.
type lexError struct{ msg string }

func (e *lexError) Error() string { return e.msg }

// lex splits sql into statements of tokens, at semicolons. Empty statements are kept (as nil),
// so that a query of only ";" still counts as one empty statement.
func lex(sql string) ([][]token, error) {
	var stmts [][]token
	var cur []token
	i := 0
	for {
		// Whitespace and comments.
		for i < len(sql) {
			c := sql[i]
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
				i++
				continue
			case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
				for i < len(sql) && sql[i] != '\n' {
					i++
				}
				continue
			case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
				depth := 0
				for {
					if i+1 >= len(sql) {
						return nil, &lexError{"unterminated /* comment"}
					}
					switch {
					case sql[i] == '/' && sql[i+1] == '*':
						depth++
						i += 2
					case sql[i] == '*' && sql[i+1] == '/':
						depth--
						i += 2
					default:
						i++
					}
					if depth == 0 {
						break
					}
				}
				continue
			}
			break
		}
		if i >= len(sql) {
			if cur != nil || len(stmts) == 0 {
				stmts = append(stmts, cur)
			}
			return stmts, nil
		}
		start := i
		c := sql[i]
		t := token{kind: tPunct}
		switch {
		case c == ';':
			i++
			stmts = append(stmts, cur)
			cur = nil
			// A trailing ';' ends the last statement; it doesn't start an empty one.
			continue
		case c == '\'' || c == '"':
			val, end, ok := unquote(sql, i, c)
			if !ok {
				if c == '\'' {
					return nil, &lexError{"unterminated quoted string"}
				}
				return nil, &lexError{"unterminated quoted identifier"}
			}
			i = end
			t.val = val
			t.kind = tString
			if c == '"' {
				t.kind = tQuoted
			}
		case c == '$' && i+1 < len(sql) && isDigit(sql[i+1]):
			i++
			for i < len(sql) && isDigit(sql[i]) {
				i++
			}
			t.kind = tParam
			t.val = sql[start+1 : i]
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			for i < len(sql) && (isDigit(sql[i]) || sql[i] == '.' || sql[i] == 'e' || sql[i] == 'E' ||
				(sql[i] == '+' || sql[i] == '-') && (sql[i-1] == 'e' || sql[i-1] == 'E')) {
				i++
			}
			t.kind = tNumber
		case isIdentStart(c):
			for i < len(sql) && (isIdentStart(sql[i]) || isDigit(sql[i]) || sql[i] == '$') {
				i++
			}
			t.kind = tWord
		default:
			i++
			if i < len(sql) {
				switch sql[start : i+1] {
				case "::", ">=", "<=", "<>", "!=":
					i++
				}
			}
		}
		t.text = sql[start:i]
		cur = append(cur, t)
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// unquote reads the quoted run starting at sql[i] (quote q, a doubled quote standing for itself)
// and returns its content and the offset just past it.
func unquote(sql string, i int, q byte) (string, int, bool) {
	var b strings.Builder
	for i++; i < len(sql); i++ {
		if sql[i] != q {
			b.WriteByte(sql[i])
			continue
		}
		if i+1 < len(sql) && sql[i+1] == q {
			b.WriteByte(q)
			i++
			continue
		}
		return b.String(), i + 1, true
	}
	return "", len(sql), false
}

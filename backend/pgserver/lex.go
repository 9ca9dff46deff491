package pgserver

import "strings"

// The lexer of PostgreSQL's text, as far as the statements the backends read themselves need
// it (kv's whole matcher; the session statements of both, statements.go): standard-conforming
// strings (a doubled quote stands for one, backslashes are literal), quoted identifiers, $n
// parameters, numbers, nested block comments. Anything else (escape strings, dollar quoting,
// operators beyond comparisons and casts) lexes as tokens a reader then refuses. d1 runs
// SQLite's dialect and keeps a lexer of its own for it.

// TokenKind is the kind of a Token.
type TokenKind uint8

// Token kinds.
const (
	TokEOF    TokenKind = iota
	TokWord             // a keyword or bare identifier
	TokQuoted           // "identifier"
	TokString           // 'text'
	TokNumber           // 12, 1.5, 1e3
	TokParam            // $n
	TokPunct            // punctuation, and ::, >=, <=, <>, !=
)

// Token is one lexical token.
type Token struct {
	Kind TokenKind
	Text string // as written, quotes included
	Val  string // a string's or quoted identifier's content; a parameter's number
}

// Is reports whether t is the keyword kw, case-insensitively.
func (t Token) Is(kw string) bool { return t.Kind == TokWord && strings.EqualFold(t.Text, kw) }

// IsPunct reports whether t is the punctuation p.
func (t Token) IsPunct(p string) bool { return t.Kind == TokPunct && t.Text == p }

// LexError is text the lexer can't read: an unterminated string, identifier or comment. The
// client sees it as 42601.
type LexError struct{ Msg string }

func (e *LexError) Error() string { return e.Msg }

// Lex splits sql into statements of tokens, at semicolons. Empty statements are kept (as nil),
// so that a query of only ";" still counts as one empty statement.
func Lex(sql string) ([][]Token, error) {
	var stmts [][]Token
	var cur []Token
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
						return nil, &LexError{"unterminated /* comment"}
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
		t := Token{Kind: TokPunct}
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
					return nil, &LexError{"unterminated quoted string"}
				}
				return nil, &LexError{"unterminated quoted identifier"}
			}
			i = end
			t.Val = val
			t.Kind = TokString
			if c == '"' {
				t.Kind = TokQuoted
			}
		case c == '$' && i+1 < len(sql) && isDigit(sql[i+1]):
			i++
			for i < len(sql) && isDigit(sql[i]) {
				i++
			}
			t.Kind = TokParam
			t.Val = sql[start+1 : i]
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			for i < len(sql) && (isDigit(sql[i]) || sql[i] == '.' || sql[i] == 'e' || sql[i] == 'E' ||
				(sql[i] == '+' || sql[i] == '-') && (sql[i-1] == 'e' || sql[i-1] == 'E')) {
				i++
			}
			t.Kind = TokNumber
		case isIdentStart(c):
			for i < len(sql) && (isIdentStart(sql[i]) || isDigit(sql[i]) || sql[i] == '$') {
				i++
			}
			t.Kind = TokWord
		default:
			i++
			if i < len(sql) {
				switch sql[start : i+1] {
				case "::", ">=", "<=", "<>", "!=":
					i++
				}
			}
		}
		t.Text = sql[start:i]
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

package mysqlserver

import (
	"encoding/hex"
	"strings"
)

// The lexer reads MySQL text as far as this package and the backends need it: words, @@system
// and @user variables, 'strings' (with an optional _charset introducer, and X'hex'), numbers,
// `identifiers`, ? placeholders, punctuation, and comments (skipped, except that a /*! … */
// executable comment's content is read as text, as MySQL does). Strings follow
// NO_BACKSLASH_ESCAPES, the mode every session here runs in: a doubled quote stands for one,
// a backslash for itself.

// Kind is the kind of a token.
type Kind uint8

// Token kinds.
const (
	EOF    Kind = iota
	Word        // a keyword or bare identifier
	Var         // @@name, @@session.name, @name
	String      // 'text', "text", X'hex', _charset'text'
	Number      // 12, 1.5, 1e3, 0x1f
	Ident       // `identifier`
	Param       // ?
	Punct       // one or two characters of punctuation
	Semi        // ;
	Bad         // an unterminated string, identifier or comment
)

// Token is one lexical token of a statement: where it is in the text, and for a String its
// value.
type Token struct {
	Kind       Kind
	Start, End int    // byte offsets in the text
	Value      []byte // a String's content, decoded
	Binary     bool   // a String introduced by _binary or written X'…': bytes, not text
	Text       string // the token as written
}

// Is reports whether t is the keyword kw, case-insensitively.
func (t Token) Is(kw string) bool { return t.Kind == Word && strings.EqualFold(t.Text, kw) }

// IsPunct reports whether t is the punctuation p.
func (t Token) IsPunct(p string) bool { return t.Kind == Punct && t.Text == p }

// Lex splits sql into tokens, through the end of the text (semicolons included, as Semi).
func Lex(sql string) []Token {
	var ts []Token
	for i := 0; ; {
		t := next(sql, i)
		if t.Kind == EOF {
			return ts
		}
		ts = append(ts, t)
		i = t.End
		if t.Kind == Bad {
			return ts
		}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// next reads the token that starts at or after i.
func next(s string, i int) Token {
	for i < len(s) {
		c := s[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "-- ") || c == '-' && i+2 == len(s) && s[i+1] == '-' ||
			c == '-' && i+2 < len(s) && s[i+1] == '-' && isSpace(s[i+2]):
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if i+2 < len(s) && s[i+2] == '!' {
				// /*!40101 SET NAMES utf8 */: the content is read, the markers skipped.
				i += 3
				for i < len(s) && isDigit(s[i]) {
					i++
				}
				continue
			}
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return Token{Kind: Bad, Start: i, End: len(s), Text: s[i:]}
			}
			i += end + 4
			continue
		case c == '*' && i+1 < len(s) && s[i+1] == '/':
			i += 2 // the end of an executable comment
			continue
		}
		break
	}
	if i >= len(s) {
		return Token{Kind: EOF, Start: len(s), End: len(s)}
	}
	start := i
	tok := func(k Kind, end int) Token { return Token{Kind: k, Start: start, End: end, Text: s[start:end]} }
	c := s[i]
	switch {
	case c == '\'' || c == '"':
		return quoted(s, start, i)
	case (c == 'x' || c == 'X') && i+1 < len(s) && s[i+1] == '\'':
		t := quoted(s, start, i+1)
		if t.Kind == String {
			b, err := hex.DecodeString(string(t.Value))
			if err != nil {
				return Token{Kind: Bad, Start: start, End: t.End, Text: s[start:t.End]}
			}
			t.Value, t.Binary = b, true
		}
		return t
	case c == '_' && i+1 < len(s) && isIdentByte(s[i+1]):
		j := i + 1
		for j < len(s) && isIdentByte(s[j]) {
			j++
		}
		k := j
		for k < len(s) && isSpace(s[k]) {
			k++
		}
		if k < len(s) && (s[k] == '\'' || (s[k] == 'X' || s[k] == 'x') && k+1 < len(s) && s[k+1] == '\'') {
			// _utf8mb4'…', _binary'…', _binary X'…'
			t := next(s, k)
			if t.Kind == String {
				t.Start, t.Text = start, s[start:t.End]
				t.Binary = t.Binary || strings.EqualFold(s[i:j], "_binary")
			}
			return t
		}
		return tok(Word, j)
	case c == '`':
		j := i + 1
		for {
			k := strings.IndexByte(s[j:], '`')
			if k < 0 {
				return tok(Bad, len(s))
			}
			j += k + 1
			if j < len(s) && s[j] == '`' {
				j++
				continue
			}
			return tok(Ident, j)
		}
	case c == '@':
		j := i + 1
		if j < len(s) && s[j] == '@' {
			j++
		}
		name := j
		for j < len(s) && (isIdentByte(s[j]) || s[j] == '.') {
			j++
		}
		if j == name || s[j-1] == '.' {
			return tok(Punct, name) // no name: not a variable
		}
		return tok(Var, j)
	case c == '?':
		return tok(Param, i+1)
	case c == ';':
		return tok(Semi, i+1)
	case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
		j := i
		for j < len(s) && (isIdentByte(s[j]) || s[j] == '.' ||
			(s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E')) {
			j++
		}
		return tok(Number, j)
	case isIdentByte(c):
		j := i
		for j < len(s) && isIdentByte(s[j]) {
			j++
		}
		return tok(Word, j)
	}
	if i+1 < len(s) {
		switch s[i : i+2] {
		case "<=", ">=", "<>", "!=", ":=", "||", "&&", "<<", ">>":
			return tok(Punct, i+2)
		}
	}
	return tok(Punct, i+1)
}

// quoted reads the string whose opening quote is at q; the token starts at start.
func quoted(s string, start, q int) Token {
	quote := s[q]
	var val []byte
	j := q + 1
	for {
		k := strings.IndexByte(s[j:], quote)
		if k < 0 {
			return Token{Kind: Bad, Start: start, End: len(s), Text: s[start:]}
		}
		val = append(val, s[j:j+k]...)
		j += k + 1
		if j < len(s) && s[j] == quote {
			val = append(val, quote)
			j++
			continue
		}
		if val == nil {
			val = []byte{}
		}
		return Token{Kind: String, Start: start, End: j, Text: s[start:j], Value: val}
	}
}

// Rewrite copies sql, replacing each token for which replace returns ok with the text it
// returns; a backend uses it to number ? placeholders and to turn MySQL literals into its own.
func Rewrite(sql string, replace func(t Token) (string, bool)) string {
	var b strings.Builder
	last := 0
	for _, t := range Lex(sql) {
		if r, ok := replace(t); ok {
			b.WriteString(sql[last:t.Start])
			b.WriteString(r)
			last = t.End
		}
	}
	if last == 0 {
		return sql
	}
	b.WriteString(sql[last:])
	return b.String()
}

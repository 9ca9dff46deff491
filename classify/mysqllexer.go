package classify

import "strings"

// myTokKind classifies a myToken of the small SQL myLexer.
type myTokKind uint8

const (
	mtWord   myTokKind = iota // keyword or identifier
	mtQuoted                  // `identifier`
	mtString                  // 'string' or "string"
	mtNumber
	mtUserVar // @name, @`name`, @'name'
	mtSysVar  // @@name, @@session.name
	mtPunct   // anything else, one or two characters (:=)
)

type myToken struct {
	kind       myTokKind
	start, end int    // in the statement text
	text       string // words upper-cased; variables without their @ or quotes, lower-cased for @@
}

// myLexer splits SQL text into tokens, skipping comments; MySQL's executable comments
// (/*! ... */) count as code, since the server runs them.
type myLexer struct {
	s   string
	pos int
}

func myWordByte(b byte) bool {
	return b == '_' || b == '$' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

// next returns the next myToken, or ok false at the end of the text.
func (l *myLexer) next() (myToken, bool) {
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
			l.pos = mySkipQuoted(s, l.pos, c)
			return myToken{kind: mtString, start: start, end: l.pos}, true
		case c == '`':
			l.pos = mySkipQuoted(s, l.pos, c)
			return myToken{kind: mtQuoted, start: start, end: l.pos, text: myUnquote(s[start:l.pos])}, true
		case c == '@' && strings.HasPrefix(s[l.pos:], "@@"):
			l.pos += 2
			for l.pos < len(s) && (myWordByte(s[l.pos]) || s[l.pos] == '.') {
				l.pos++
			}
			return myToken{kind: mtSysVar, start: start, end: l.pos, text: strings.ToLower(s[start+2 : l.pos])}, true
		case c == '@':
			l.pos++
			if l.pos < len(s) && (s[l.pos] == '`' || s[l.pos] == '\'' || s[l.pos] == '"') {
				l.pos = mySkipQuoted(s, l.pos, s[l.pos])
				return myToken{kind: mtUserVar, start: start, end: l.pos, text: myUnquote(s[start+1 : l.pos])}, true
			}
			for l.pos < len(s) && (myWordByte(s[l.pos]) || s[l.pos] == '.') {
				l.pos++
			}
			return myToken{kind: mtUserVar, start: start, end: l.pos, text: s[start+1 : l.pos]}, true
		case c >= '0' && c <= '9' || c == '.' && l.pos+1 < len(s) && s[l.pos+1] >= '0' && s[l.pos+1] <= '9':
			for l.pos < len(s) && (myWordByte(s[l.pos]) || s[l.pos] == '.') {
				l.pos++
			}
			return myToken{kind: mtNumber, start: start, end: l.pos}, true
		case myWordByte(c):
			for l.pos < len(s) && myWordByte(s[l.pos]) {
				l.pos++
			}
			return myToken{kind: mtWord, start: start, end: l.pos, text: strings.ToUpper(s[start:l.pos])}, true
		case c == ':' && strings.HasPrefix(s[l.pos:], ":="):
			l.pos += 2
			return myToken{kind: mtPunct, start: start, end: l.pos, text: ":="}, true
		}
		l.pos++
		return myToken{kind: mtPunct, start: start, end: l.pos, text: s[start:l.pos]}, true
	}
	return myToken{}, false
}

// mySkipQuoted returns the position after the quoted run starting at i (backslash escapes and
// doubled quotes inside), or the end of s if it is not closed.
func mySkipQuoted(s string, i int, q byte) int {
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

// myUnquote strips the quotes around a quoted name and undoubles quotes inside.
func myUnquote(s string) string {
	if len(s) < 2 {
		return s
	}
	q := s[:1]
	return strings.ReplaceAll(s[1:len(s)-1], q+q, q)
}

package classify

// token is one lexical unit of a statement: a word (keyword or identifier, quoted identifiers
// included with their quotes), a punctuation byte, or a literal.
type token struct {
	text string
	kind tokenKind
}

type tokenKind uint8

const (
	tokWord tokenKind = iota
	tokPunct
	tokLiteral
	tokSemicolon
)

// lexer walks SQL text token by token, skipping whitespace and comments.
type lexer struct {
	src string
	pos int
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isWordStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isWordPart(c byte) bool { return isWordStart(c) || (c >= '0' && c <= '9') || c == '$' }

// next returns the next token, or ok=false at the end of the text.
func (l *lexer) next() (token, bool) {
	s := l.src
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case isSpace(c):
			l.pos++
		case c == '-' && l.pos+1 < len(s) && s[l.pos+1] == '-':
			for l.pos < len(s) && s[l.pos] != '\n' {
				l.pos++
			}
		case c == '/' && l.pos+1 < len(s) && s[l.pos+1] == '*':
			l.skipBlockComment()
		default:
			return l.token(), true
		}
	}
	return token{}, false
}

func (l *lexer) skipBlockComment() {
	s := l.src
	depth := 0
	for l.pos < len(s) {
		if s[l.pos] == '/' && l.pos+1 < len(s) && s[l.pos+1] == '*' {
			depth++
			l.pos += 2
		} else if s[l.pos] == '*' && l.pos+1 < len(s) && s[l.pos+1] == '/' {
			depth--
			l.pos += 2
			if depth == 0 {
				return
			}
		} else {
			l.pos++
		}
	}
}

func (l *lexer) token() token {
	s := l.src
	start := l.pos
	c := s[l.pos]
	switch {
	case c == ';':
		l.pos++
		return token{text: s[start:l.pos], kind: tokSemicolon}
	case c == '\'':
		l.skipQuoted('\'', false)
		return token{text: s[start:l.pos], kind: tokLiteral}
	case (c == 'e' || c == 'E') && l.pos+1 < len(s) && s[l.pos+1] == '\'':
		l.pos++
		l.skipQuoted('\'', true)
		return token{text: s[start:l.pos], kind: tokLiteral}
	case c == '"':
		l.skipQuoted('"', false)
		return token{text: s[start:l.pos], kind: tokWord}
	case c == '$':
		if end := dollarTagEnd(s, l.pos); end > 0 {
			tag := s[l.pos:end]
			l.pos = end
			for l.pos < len(s) {
				if s[l.pos] == '$' && len(s)-l.pos >= len(tag) && s[l.pos:l.pos+len(tag)] == tag {
					l.pos += len(tag)
					return token{text: s[start:l.pos], kind: tokLiteral}
				}
				l.pos++
			}
			return token{text: s[start:l.pos], kind: tokLiteral}
		}
		l.pos++
		for l.pos < len(s) && s[l.pos] >= '0' && s[l.pos] <= '9' {
			l.pos++
		}
		return token{text: s[start:l.pos], kind: tokLiteral} // $1 parameter
	case isWordStart(c):
		for l.pos < len(s) && isWordPart(s[l.pos]) {
			l.pos++
		}
		return token{text: s[start:l.pos], kind: tokWord}
	case c >= '0' && c <= '9':
		for l.pos < len(s) && (isWordPart(s[l.pos]) || s[l.pos] == '.') {
			l.pos++
		}
		return token{text: s[start:l.pos], kind: tokLiteral}
	default:
		l.pos++
		return token{text: s[start:l.pos], kind: tokPunct}
	}
}

// skipQuoted moves past a quoted string or identifier starting at l.pos, where a doubled quote
// stands for one and, in escape strings, a backslash escapes the next byte.
func (l *lexer) skipQuoted(q byte, backslash bool) {
	s := l.src
	l.pos++
	for l.pos < len(s) {
		c := s[l.pos]
		switch {
		case backslash && c == '\\':
			l.pos += 2
		case c == q:
			if l.pos+1 < len(s) && s[l.pos+1] == q {
				l.pos += 2
				continue
			}
			l.pos++
			return
		default:
			l.pos++
		}
	}
	if l.pos > len(s) {
		l.pos = len(s)
	}
}

// dollarTagEnd returns the end of a dollar-quote opening tag ($$ or $tag$) at i, or 0.
func dollarTagEnd(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '$' {
		return j + 1
	}
	if j >= len(s) || !isWordStart(s[j]) {
		return 0
	}
	for j < len(s) && s[j] != '$' {
		if !isWordPart(s[j]) {
			return 0
		}
		j++
	}
	if j < len(s) {
		return j + 1
	}
	return 0
}

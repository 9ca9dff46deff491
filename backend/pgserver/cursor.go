package pgserver

import "strconv"

// Cursor walks the tokens of one statement for a reader of it (the session statements here,
// kv's matcher); Fail makes the reader's errors.
type Cursor struct {
	Tokens []Token
	Pos    int
	Fail   func(format string, args ...any) error
}

// Peek returns the next token without consuming it; TokEOF at the end.
func (c *Cursor) Peek() Token {
	if c.Pos < len(c.Tokens) {
		return c.Tokens[c.Pos]
	}
	return Token{Kind: TokEOF}
}

// Next consumes and returns the next token.
func (c *Cursor) Next() Token {
	t := c.Peek()
	if c.Pos < len(c.Tokens) {
		c.Pos++
	}
	return t
}

// Accept consumes the keyword kw if it is next.
func (c *Cursor) Accept(kw string) bool {
	if c.Peek().Is(kw) {
		c.Pos++
		return true
	}
	return false
}

// AcceptPunct consumes the punctuation s if it is next.
func (c *Cursor) AcceptPunct(s string) bool {
	if c.Peek().IsPunct(s) {
		c.Pos++
		return true
	}
	return false
}

// Expect consumes the keyword kw or fails.
func (c *Cursor) Expect(kw string) error {
	if !c.Accept(kw) {
		return c.Fail("expected %s at %s", kw, c.Describe())
	}
	return nil
}

// ExpectPunct consumes the punctuation s or fails.
func (c *Cursor) ExpectPunct(s string) error {
	if !c.AcceptPunct(s) {
		return c.Fail("expected %s at %s", s, c.Describe())
	}
	return nil
}

// Describe names the next token for an error message.
func (c *Cursor) Describe() string {
	t := c.Peek()
	if t.Kind == TokEOF {
		return "end of statement"
	}
	s := t.Text
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

// End fails unless the statement is over.
func (c *Cursor) End() error {
	if c.Pos < len(c.Tokens) {
		return c.Fail("unexpected %s", c.Describe())
	}
	return nil
}

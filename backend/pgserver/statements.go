package pgserver

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The session statements drivers, psql and the pool send, read the same way for every
// backend: SET, RESET, SHOW and set_config, which change or read Settings. What a backend does
// with SET LOCAL and SET TRANSACTION, which touch its transactions, is its own.

// SessionVerb is what a session statement does.
type SessionVerb uint8

// Session statements.
const (
	SetSession     SessionVerb = iota + 1 // SET [SESSION] name {= | TO} value, SET TIME ZONE value
	SetLocal                              // SET LOCAL name ...: for the transaction only
	SetTransaction                        // SET TRANSACTION ..., SET SESSION CHARACTERISTICS ...
	Reset                                 // RESET name | RESET ALL
	Show                                  // SHOW name | SHOW ALL
	SetConfig                             // SELECT [pg_catalog.]set_config('name', 'value', bool)[, ...]
)

// SessionStatement is a session statement as read.
type SessionStatement struct {
	Verb    SessionVerb
	Name    string      // the parameter, lower case; "" for ALL
	Value   string      // SET's value, its parts joined by ", "
	Default bool        // SET name TO DEFAULT, SET TIME ZONE LOCAL
	Pairs   [][2]string // set_config's name and value of each call
}

// Tag is the command tag PostgreSQL answers the statement with.
func (st *SessionStatement) Tag() string {
	switch st.Verb {
	case Reset:
		return "RESET"
	case Show:
		return "SHOW"
	case SetConfig:
		return "SELECT"
	}
	return "SET"
}

// SessionError is a session statement that doesn't read: what was expected, and where.
type SessionError struct{ Msg string }

func (e *SessionError) Error() string { return e.Msg }

// IsSession reports whether a statement's tokens start a session statement.
func IsSession(ts []Token) bool {
	if len(ts) == 0 {
		return false
	}
	switch t := ts[0]; {
	case t.Is("SET"), t.Is("RESET"), t.Is("SHOW"):
		return true
	case t.Is("SELECT"):
		return len(ts) > 1 && (ts[1].Is("set_config") || ts[1].Is("pg_catalog"))
	}
	return false
}

// ParseSession reads one session statement's tokens (IsSession).
func ParseSession(ts []Token) (*SessionStatement, error) {
	p := &sessionParser{Cursor: Cursor{Tokens: ts, Fail: func(format string, args ...any) error {
		return &SessionError{fmt.Sprintf(format, args...)}
	}}, st: &SessionStatement{}}
	var err error
	switch t := p.Next(); {
	case t.Is("SET"):
		err = p.set()
	case t.Is("RESET"):
		p.st.Verb = Reset
		if err = p.settingName(true); err == nil {
			err = p.End()
		}
	case t.Is("SHOW"):
		p.st.Verb = Show
		if err = p.settingName(true); err == nil {
			err = p.End()
		}
	case t.Is("SELECT"):
		err = p.setConfig()
	default:
		err = p.Fail("not a session statement: %s", strconv.Quote(t.Text))
	}
	if err != nil {
		return nil, err
	}
	return p.st, nil
}

// sessionParser reads one session statement.
type sessionParser struct {
	Cursor
	st *SessionStatement
}

// set reads SET [SESSION | LOCAL] name {= | TO} value[, ...] | DEFAULT, SET TIME ZONE value,
// and SET TRANSACTION / SET SESSION CHARACTERISTICS, whose rest is the backend's to read.
func (p *sessionParser) set() error {
	st := p.st
	st.Verb = SetSession
	if p.Accept("LOCAL") {
		st.Verb = SetLocal
	} else {
		p.Accept("SESSION")
	}
	if p.Peek().Is("TRANSACTION") || p.Peek().Is("CHARACTERISTICS") {
		st.Verb = SetTransaction
		return nil
	}
	timeZone := p.Peek().Is("TIME")
	if err := p.settingName(false); err != nil {
		return err
	}
	if !timeZone && !p.AcceptPunct("=") && !p.Accept("TO") {
		return p.Fail("expected = or TO at %s", p.Describe())
	}
	if p.Accept("DEFAULT") || st.Name == "timezone" && p.Accept("LOCAL") {
		st.Default = true
		return p.End()
	}
	var parts []string
	for {
		t := p.Next()
		switch {
		case t.Kind == TokString || t.Kind == TokQuoted:
			parts = append(parts, t.Val)
		case t.Kind == TokWord || t.Kind == TokNumber:
			parts = append(parts, t.Text)
		case (t.IsPunct("-") || t.IsPunct("+")) && p.Peek().Kind == TokNumber:
			parts = append(parts, strings.TrimPrefix(t.Text, "+")+p.Next().Text)
		default:
			return p.Fail("expected a value at %s", strconv.Quote(t.Text))
		}
		if !p.AcceptPunct(",") {
			break
		}
	}
	st.Value = strings.Join(parts, ", ")
	return p.End()
}

// settingName reads a parameter name (a.b allowed, TIME ZONE for timezone) into st.Name,
// lower-cased; with allowAll, ALL leaves it "".
func (p *sessionParser) settingName(allowAll bool) error {
	if allowAll && p.Accept("ALL") {
		return nil
	}
	if p.Accept("TIME") {
		p.st.Name = "timezone"
		return p.Expect("ZONE")
	}
	var name strings.Builder
	for {
		t := p.Next()
		switch t.Kind {
		case TokWord:
			name.WriteString(strings.ToLower(t.Text))
		case TokQuoted:
			name.WriteString(t.Val)
		default:
			return p.Fail("expected a parameter name at %s", strconv.Quote(t.Text))
		}
		if !p.AcceptPunct(".") {
			break
		}
		name.WriteByte('.')
	}
	p.st.Name = name.String()
	return nil
}

// setConfig reads SELECT [pg_catalog.]set_config('name', 'value', is_local)[, ...], which the
// pool sends to give a connection a client's startup parameters.
func (p *sessionParser) setConfig() error {
	st := p.st
	st.Verb = SetConfig
	for {
		if p.Accept("pg_catalog") {
			if err := p.ExpectPunct("."); err != nil {
				return err
			}
		}
		if err := p.Expect("set_config"); err != nil {
			return err
		}
		if err := p.ExpectPunct("("); err != nil {
			return err
		}
		name, value := p.Next(), Token{}
		if name.Kind != TokString || !p.AcceptPunct(",") {
			return p.Fail("set_config takes literal arguments only")
		}
		if value = p.Next(); value.Kind != TokString || !p.AcceptPunct(",") {
			return p.Fail("set_config takes literal arguments only")
		}
		if local := p.Next(); !(local.Is("true") || local.Is("false")) {
			return p.Fail("set_config takes literal arguments only")
		}
		if err := p.ExpectPunct(")"); err != nil {
			return err
		}
		st.Pairs = append(st.Pairs, [2]string{strings.ToLower(name.Val), value.Val})
		if !p.AcceptPunct(",") {
			break
		}
	}
	return p.End()
}

// SessionFields is the row description of a session statement that returns rows: SHOW and
// set_config.
func SessionFields(st *SessionStatement) []pgproto3.FieldDescription {
	switch st.Verb {
	case Show:
		if st.Name == "" {
			return TextFields("name", "setting", "description")
		}
		return TextFields(st.Name)
	case SetConfig:
		names := make([]string, len(st.Pairs))
		for i := range names {
			names[i] = "set_config"
		}
		return TextFields(names...)
	}
	return nil
}

// RunSession answers SET (as SET SESSION), RESET, SHOW and set_config from Settings, up to
// CommandComplete; with describe a statement that returns rows sends its RowDescription first,
// as a simple Query does. SET LOCAL and SET TRANSACTION are the backend's: it treats them
// before, and passes SET LOCAL here only if it runs it as SET.
func (c *Conn) RunSession(st *SessionStatement, describe bool) error {
	// The RowDescription goes after what set_config reports (ParameterStatus), before the row.
	rowDescription := func() {
		if describe {
			c.Send(&pgproto3.RowDescription{Fields: SessionFields(st)})
		}
	}
	switch st.Verb {
	case SetSession, SetLocal:
		if st.Default {
			c.Settings.Reset(st.Name)
		} else if err := c.Settings.Set(st.Name, st.Value); err != nil {
			return err
		}
	case Reset:
		if st.Name == "" {
			c.Settings.ResetAll()
		} else {
			c.Settings.Reset(st.Name)
		}
	case Show:
		if st.Name == "" {
			rowDescription()
			for _, k := range c.Settings.Names() {
				v, _ := c.Settings.Get(k)
				c.Send(&pgproto3.DataRow{Values: [][]byte{[]byte(k), []byte(v), {}}})
			}
			break
		}
		v, ok := c.Settings.Get(st.Name)
		if !ok {
			return Errorf(CodeUndefinedObject, "unrecognized configuration parameter %q", st.Name)
		}
		rowDescription()
		c.Send(&pgproto3.DataRow{Values: [][]byte{[]byte(v)}})
	case SetConfig:
		row := make([][]byte, len(st.Pairs))
		for i, kv := range st.Pairs {
			if err := c.Settings.Set(kv[0], kv[1]); err != nil {
				return err
			}
			row[i] = []byte(kv[1])
		}
		rowDescription()
		c.Send(&pgproto3.DataRow{Values: row})
		c.Out = AppendCommandComplete(c.Out, "SELECT", 1, true)
		return nil
	}
	c.Out = AppendCommandComplete(c.Out, st.Tag(), 0, false)
	return nil
}

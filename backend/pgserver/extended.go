package pgserver

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// The extended protocol: Parse, Bind, Describe, Execute and Close are answered as they arrive,
// the statements and portals kept by name here and run by the Handler; an error makes the
// session skip to the next Sync (fail), and Sync ends the batch.

// fail reports a failed extended-protocol message and starts skipping to Sync.
func (s *session) fail(err error) {
	if err == nil {
		return
	}
	s.c.SendError(s.h.Failed(err))
	s.skipping = true
}

// sync ends the batch: the Handler's part (an implicit transaction commits), then
// ReadyForQuery.
func (s *session) sync() error {
	if err := s.h.Sync(); err != nil {
		s.c.SendError(s.h.Failed(err))
	}
	s.skipping = false
	return s.ready()
}

// extended handles one extended-protocol message other than Sync.
func (s *session) extended(m pgproto3.FrontendMessage) error {
	switch m := m.(type) {
	case *pgproto3.Parse:
		return s.parse(m)
	case *pgproto3.Bind:
		return s.bind(m)
	case *pgproto3.Describe:
		return s.describe(m)
	case *pgproto3.Execute:
		p, ok := s.c.portals[m.Portal]
		if !ok {
			return Errorf(CodeUnknownPortal, "portal %q does not exist", m.Portal)
		}
		return p.Execute(int64(m.MaxRows))
	case *pgproto3.Close:
		return s.closeObject(m)
	}
	return nil
}

func (s *session) parse(m *pgproto3.Parse) error {
	c := s.c
	if _, ok := c.stmts[m.Name]; ok && m.Name != "" {
		return Errorf(CodeDuplicateStatement, "prepared statement %q already exists", m.Name)
	}
	st, err := s.h.Prepare(m)
	if err != nil {
		return err
	}
	if old, ok := c.stmts[m.Name]; ok {
		old.Close()
	}
	c.stmts[m.Name] = st
	c.Out = AppendEmpty(c.Out, '1') // ParseComplete
	return nil
}

func (s *session) bind(m *pgproto3.Bind) error {
	c := s.c
	st, ok := c.stmts[m.PreparedStatement]
	if !ok {
		return Errorf(CodeUnknownStatement, "prepared statement %q does not exist", m.PreparedStatement)
	}
	if err := checkBind(m, len(st.ParamOIDs()), len(st.Fields())); err != nil {
		return err
	}
	if old, ok := c.portals[m.DestinationPortal]; ok {
		if m.DestinationPortal != "" {
			return Errorf(CodeDuplicatePortal, "portal %q already exists", m.DestinationPortal)
		}
		old.Close()
		delete(c.portals, "")
	}
	p, err := s.h.Bind(st, m)
	if err != nil {
		return err
	}
	c.portals[m.DestinationPortal] = p
	c.Out = AppendEmpty(c.Out, '2') // BindComplete
	return nil
}

// checkBind checks a Bind's counts and format codes against a statement with params
// parameters and cols result columns.
func checkBind(m *pgproto3.Bind, params, cols int) error {
	if len(m.Parameters) != params {
		return Errorf(CodeProtocolViolation, "bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, params)
	}
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(m.Parameters) {
		return Errorf(CodeProtocolViolation, "bind message has %d parameter formats but %d parameters", n, len(m.Parameters))
	}
	if n := len(m.ResultFormatCodes); n > 1 && n != cols {
		return Errorf(CodeProtocolViolation, "bind message has %d result formats but query has %d columns", n, cols)
	}
	for _, formats := range [][]int16{m.ParameterFormatCodes, m.ResultFormatCodes} {
		for _, f := range formats {
			if f != 0 && f != 1 {
				return Errorf(CodeProtocolViolation, "unsupported format code: %d", f)
			}
		}
	}
	return nil
}

func (s *session) describe(m *pgproto3.Describe) error {
	c := s.c
	var fields []pgproto3.FieldDescription
	switch m.ObjectType {
	case 'S':
		st, ok := c.stmts[m.Name]
		if !ok {
			return Errorf(CodeUnknownStatement, "prepared statement %q does not exist", m.Name)
		}
		c.Send(&pgproto3.ParameterDescription{ParameterOIDs: st.ParamOIDs()})
		fields = st.Fields()
	case 'P':
		p, ok := c.portals[m.Name]
		if !ok {
			return Errorf(CodeUnknownPortal, "portal %q does not exist", m.Name)
		}
		var err error
		if fields, err = p.Fields(); err != nil {
			return err
		}
	default:
		return Errorf(CodeProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType)
	}
	c.AppendRowDescription(fields)
	return nil
}

// AppendRowDescription appends RowDescription, or NoData for no fields.
func (c *Conn) AppendRowDescription(fields []pgproto3.FieldDescription) {
	if len(fields) == 0 {
		c.Out = AppendEmpty(c.Out, 'n') // NoData
		return
	}
	c.Send(&pgproto3.RowDescription{Fields: fields})
}

func (s *session) closeObject(m *pgproto3.Close) error {
	c := s.c
	switch m.ObjectType {
	case 'S':
		if st, ok := c.stmts[m.Name]; ok {
			st.Close()
			delete(c.stmts, m.Name)
		}
	case 'P':
		if p, ok := c.portals[m.Name]; ok {
			p.Close()
			delete(c.portals, m.Name)
		}
	default:
		return Errorf(CodeProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType)
	}
	c.Out = AppendEmpty(c.Out, '3') // CloseComplete
	return nil
}

package d1

import (
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// The extended protocol, D1's part of it (package pgserver keeps the statements and portals by
// name and answers Describe and Close): Parse compiles with SQLite, Bind binds a portal's
// statement, Execute steps it. The writes of a batch up to Sync are one implicit transaction,
// as in PostgreSQL: an error rolls them all back (see needsImplicit for when it is opened).

var errInFailedTx = &pgserver.Error{Code: codeInFailedTx, Message: "current transaction is aborted, commands ignored until end of transaction block"}

// track records, as a message starts, whether an explicit transaction is open, for fail; it
// returns the function that forgets it once the message succeeded.
func (s *session) track(err *error) func() {
	s.txBefore = s.inExplicitTx()
	return func() {
		if *err == nil {
			s.txBefore = false
		}
	}
}

// Prepare compiles a Parse message's statement.
func (s *session) Prepare(m *pgproto3.Parse) (_ pgserver.Stmt, err error) {
	defer s.track(&err)()
	kind, tag := classify(m.Query, 0)
	ps := &prepared{sql: m.Query, kind: kind, tag: tag}
	switch {
	case kind == kEmpty:
	case kind.answeredHere():
		end := statementEnd(m.Query, 0)
		if k, _ := classify(m.Query, end); k != kEmpty {
			return nil, pgserver.Errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement")
		}
		ps.sql = strings.TrimSuffix(strings.TrimSpace(m.Query[:end]), ";")
		ps.params = make([]uint32, len(m.ParameterOIDs))
		copy(ps.params, m.ParameterOIDs)
	default:
		if s.failed && !allowedWhenFailed(kind) {
			return nil, errInFailedTx
		}
		st, tail, err := s.c.prepare(m.Query, 0, m.Name != "")
		if err != nil {
			return nil, withPosition(toPG(err, !s.c.autocommit()), err, m.Query)
		}
		if k, _ := classify(m.Query, tail); k != kEmpty {
			st.finalize()
			return nil, pgserver.Errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement")
		}
		ps.st = st
		ps.cols = columnsOf(st)
		var count int
		ps.slots, count = paramSlots(st)
		count = max(count, len(m.ParameterOIDs))
		ps.params = make([]uint32, count)
		copy(ps.params, m.ParameterOIDs)
		for _, oid := range ps.params {
			if oid == pgserver.OIDUnknown {
				inferred := inferParamTypes(m.Query, count, s.c.tableColumns)
				for i, oid := range ps.params {
					if oid == pgserver.OIDUnknown {
						ps.params[i] = inferred[i]
					}
				}
				break
			}
		}
	}
	return ps, nil
}

// Bind binds the parameters of a statement into a new portal.
func (s *session) Bind(st pgserver.Stmt, m *pgproto3.Bind) (_ pgserver.Portal, err error) {
	defer s.track(&err)()
	ps := st.(*prepared)
	if s.failed && !allowedWhenFailed(ps.kind) {
		return nil, errInFailedTx
	}
	p, err := s.newPortal(ps, append([]int16(nil), m.ResultFormatCodes...))
	if err != nil {
		return nil, err
	}
	if p.st != nil {
		for i := 1; i < len(ps.slots); i++ {
			n := ps.slots[i] - 1
			if err := bindParam(p.st, i, ps.params[n], pgserver.FormatAt(m.ParameterFormatCodes, n) == 1, m.Parameters[n]); err != nil {
				p.Close()
				return nil, err
			}
		}
	}
	return p, nil
}

// ParamOIDs are the types of the statement's parameters.
func (ps *prepared) ParamOIDs() []uint32 { return ps.params }

// Fields describe the statement's result before it runs.
func (ps *prepared) Fields() []pgproto3.FieldDescription {
	if ps.st != nil {
		return ps.describeColumns()
	}
	return answeredColumns(ps.kind, ps.sql)
}

// Fields settles and returns the portal's row description; a write that needs the batch's
// implicit transaction opens it first, since settling may run the statement to its first row.
func (p *portal) Fields() (_ []pgproto3.FieldDescription, err error) {
	s := p.s
	defer s.track(&err)()
	if p.st == nil {
		fields := answeredColumns(p.ps.kind, p.ps.sql)
		for i := range fields {
			fields[i].Format = pgserver.FormatAt(p.formats, i)
		}
		return fields, nil
	}
	if !p.started && s.needsImplicit(p) {
		if err := s.beginImplicit(); err != nil {
			return nil, err
		}
	}
	if err := p.resolve(); err != nil {
		return nil, err
	}
	return p.fields, nil
}

// needsImplicit reports whether running p must first open the batch's implicit transaction.
// Only a write needs one, and only when more of the batch follows: PostgreSQL gives each
// statement of a READ COMMITTED batch its own snapshot anyway, so reads gain nothing from it,
// while a lone write is atomic under SQLite's autocommit. This keeps BEGIN and COMMIT off the
// path of every single-statement batch and of every read.
func (s *session) needsImplicit(p *portal) bool {
	return !s.implicit && s.c.autocommit() && p.st != nil && !p.st.readonly() && !s.w.NextIs('S')
}

// Execute runs the portal for Execute.
func (p *portal) Execute(maxRows int64) (err error) {
	s := p.s
	defer s.track(&err)()
	if s.failed && !allowedWhenFailed(p.ps.kind) {
		return errInFailedTx
	}
	switch {
	case p.ps.kind == kEmpty:
		s.w.Out = pgserver.AppendEmpty(s.w.Out, 'I') // EmptyQueryResponse
		return nil
	case p.st == nil:
		return s.answer(p.ps.kind, p.ps.tag, p.ps.sql, false)
	}
	if !p.started && s.needsImplicit(p) {
		if err := s.beginImplicit(); err != nil {
			return err
		}
	}
	if err := p.run(maxRows, false); err != nil {
		return err
	}
	if p.ps.kind == kRollbackTo {
		s.failed = false
	}
	if s.implicit && s.c.autocommit() {
		s.implicit = false
	}
	s.txEnded()
	return nil
}

// Sync ends the batch: its implicit transaction commits (or was rolled back by an error), and
// the portals of a finished transaction close.
func (s *session) Sync() (err error) {
	defer s.track(&err)()
	err = s.endImplicit()
	if s.c.autocommit() {
		s.w.ClosePortals()
	}
	return err
}

// tableColumns returns the declared types of a table's columns by lower-case name, and their
// order under "\x00order"; for parameter type inference.
func (c *conn) tableColumns(table string) map[string]string {
	cols := map[string]string{}
	st, _, err := c.prepare("SELECT name, type FROM pragma_table_info(?1)", 0, false)
	if err != nil || st == nil {
		return cols
	}
	defer st.finalize()
	if st.bindText(1, []byte(table)) != nil {
		return cols
	}
	var order []string
	for {
		row, err := st.step()
		if err != nil || !row {
			break
		}
		name := strings.ToLower(string(st.columnText(0)))
		cols[name] = string(st.columnText(1))
		order = append(order, name)
	}
	cols["\x00order"] = strings.Join(order, "\x00")
	return cols
}

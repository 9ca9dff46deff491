package d1

import (
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The extended protocol: Parse, Bind, Describe, Execute, Close, each answered as it arrives,
// and Sync ending the batch. An error makes the session skip to the next Sync (extended). The
// writes of a batch up to Sync are one implicit transaction, as in PostgreSQL: an error rolls
// them all back (see needsImplicit for when it is opened).

var errInFailedTx = &pgError{code: codeInFailedTx, msg: "current transaction is aborted, commands ignored until end of transaction block"}

// extended reports a failed extended-protocol message and starts skipping to Sync.
func (s *session) extended(err error) {
	if err == nil {
		return
	}
	s.sendError(err, "")
	s.skipping = true
}

func (s *session) parse(m *pgproto3.Parse) error {
	if m.Name != "" {
		if _, ok := s.stmts[m.Name]; ok {
			return errorf(codeDuplicateStatement, "prepared statement %q already exists", m.Name)
		}
	}
	kind, tag := classify(m.Query, 0)
	ps := &prepared{sql: m.Query, kind: kind, tag: tag}
	switch {
	case kind == kEmpty:
	case kind.answeredHere():
		end := statementEnd(m.Query, 0)
		if k, _ := classify(m.Query, end); k != kEmpty {
			return errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement")
		}
		ps.sql = strings.TrimSuffix(strings.TrimSpace(m.Query[:end]), ";")
		ps.params = make([]uint32, len(m.ParameterOIDs))
		copy(ps.params, m.ParameterOIDs)
	default:
		if s.failed && !allowedWhenFailed(kind) {
			return errInFailedTx
		}
		st, tail, err := s.c.prepare(m.Query, 0, m.Name != "")
		if err != nil {
			return withPosition(toPG(err, !s.c.autocommit()), err, m.Query)
		}
		if k, _ := classify(m.Query, tail); k != kEmpty {
			st.finalize()
			return errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement")
		}
		ps.st = st
		ps.cols = columnsOf(st)
		var count int
		ps.slots, count = paramSlots(st)
		count = max(count, len(m.ParameterOIDs))
		ps.params = make([]uint32, count)
		copy(ps.params, m.ParameterOIDs)
		for _, oid := range ps.params {
			if oid == oidUnknown {
				inferred := inferParamTypes(m.Query, count, s.c.tableColumns)
				for i, oid := range ps.params {
					if oid == oidUnknown {
						ps.params[i] = inferred[i]
					}
				}
				break
			}
		}
	}
	if old, ok := s.stmts[m.Name]; ok {
		old.drop()
	}
	s.stmts[m.Name] = ps
	s.wbuf = appendEmpty(s.wbuf, '1') // ParseComplete
	return nil
}

func (s *session) bind(m *pgproto3.Bind) error {
	ps, ok := s.stmts[m.PreparedStatement]
	if !ok {
		return errorf(codeUnknownStatement, "prepared statement %q does not exist", m.PreparedStatement)
	}
	if s.failed && !allowedWhenFailed(ps.kind) {
		return errInFailedTx
	}
	if len(m.Parameters) != len(ps.params) {
		return errorf(codeProtocolViolation, "bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, len(ps.params))
	}
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(m.Parameters) {
		return errorf(codeProtocolViolation, "bind message has %d parameter formats but %d parameters", n, len(m.Parameters))
	}
	ncol := len(ps.cols)
	if ps.st == nil {
		ncol = len(answeredColumns(ps.kind, ps.sql))
	}
	if n := len(m.ResultFormatCodes); n > 1 && n != ncol {
		return errorf(codeProtocolViolation, "bind message has %d result formats but query has %d columns", n, ncol)
	}
	for _, f := range m.ResultFormatCodes {
		if f != 0 && f != 1 {
			return errorf(codeProtocolViolation, "unsupported format code: %d", f)
		}
	}
	if old, ok := s.portals[m.DestinationPortal]; ok {
		if m.DestinationPortal != "" {
			return errorf("42P03", "portal %q already exists", m.DestinationPortal)
		}
		old.close()
		delete(s.portals, "")
	}
	p, err := s.newPortal(ps, append([]int16(nil), m.ResultFormatCodes...))
	if err != nil {
		return err
	}
	if p.st != nil {
		for i := 1; i < len(ps.slots); i++ {
			n := ps.slots[i] - 1
			f := formatAt(m.ParameterFormatCodes, n)
			if f != 0 && f != 1 {
				p.close()
				return errorf(codeProtocolViolation, "unsupported format code: %d", f)
			}
			if err := bindParam(p.st, i, ps.params[n], f == 1, m.Parameters[n]); err != nil {
				p.close()
				return err
			}
		}
	}
	s.portals[m.DestinationPortal] = p
	s.wbuf = appendEmpty(s.wbuf, '2') // BindComplete
	return nil
}

func (s *session) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		ps, ok := s.stmts[m.Name]
		if !ok {
			return errorf(codeUnknownStatement, "prepared statement %q does not exist", m.Name)
		}
		s.wbuf = appendMsg(s.wbuf, &pgproto3.ParameterDescription{ParameterOIDs: ps.params})
		var fields []pgproto3.FieldDescription
		if ps.st != nil {
			fields = ps.describeColumns()
		} else {
			fields = answeredColumns(ps.kind, ps.sql)
		}
		s.appendRowDescription(fields)
	case 'P':
		p, ok := s.portals[m.Name]
		if !ok {
			return errorf(codeUnknownPortal, "portal %q does not exist", m.Name)
		}
		if p.st == nil {
			fields := answeredColumns(p.ps.kind, p.ps.sql)
			for i := range fields {
				fields[i].Format = formatAt(p.formats, i)
			}
			s.appendRowDescription(fields)
			return nil
		}
		if !p.started && s.needsImplicit(p) {
			if err := s.beginImplicit(); err != nil {
				return err
			}
		}
		if err := p.resolve(); err != nil {
			return err
		}
		s.appendRowDescription(p.fields)
	default:
		return errorf(codeProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType)
	}
	return nil
}

func (s *session) appendRowDescription(fields []pgproto3.FieldDescription) {
	if len(fields) == 0 {
		s.wbuf = appendEmpty(s.wbuf, 'n') // NoData
		return
	}
	s.wbuf = appendMsg(s.wbuf, &pgproto3.RowDescription{Fields: fields})
}

// needsImplicit reports whether running p must first open the batch's implicit transaction.
// Only a write needs one, and only when more of the batch follows: PostgreSQL gives each
// statement of a READ COMMITTED batch its own snapshot anyway, so reads gain nothing from it,
// while a lone write is atomic under SQLite's autocommit. This keeps BEGIN and COMMIT off the
// path of every single-statement batch and of every read.
func (s *session) needsImplicit(p *portal) bool {
	return !s.implicit && s.c.autocommit() && p.st != nil && !p.st.readonly() && !s.r.nextIs('S')
}

func (s *session) execute(m *pgproto3.Execute) error {
	p, ok := s.portals[m.Portal]
	if !ok {
		return errorf(codeUnknownPortal, "portal %q does not exist", m.Portal)
	}
	if s.failed && !allowedWhenFailed(p.ps.kind) {
		return errInFailedTx
	}
	switch {
	case p.ps.kind == kEmpty:
		s.wbuf = appendEmpty(s.wbuf, 'I') // EmptyQueryResponse
		return nil
	case p.st == nil:
		return s.answer(p.ps.kind, p.ps.tag, p.ps.sql, false)
	}
	if !p.started && s.needsImplicit(p) {
		if err := s.beginImplicit(); err != nil {
			return err
		}
	}
	if err := p.run(int64(m.MaxRows), false); err != nil {
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

func (s *session) closeObject(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		if ps, ok := s.stmts[m.Name]; ok {
			ps.drop()
			delete(s.stmts, m.Name)
		}
	case 'P':
		if p, ok := s.portals[m.Name]; ok {
			p.close()
			delete(s.portals, m.Name)
		}
	default:
		return errorf(codeProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType)
	}
	s.wbuf = appendEmpty(s.wbuf, '3') // CloseComplete
	return nil
}

// sync ends the batch: its implicit transaction commits (or was rolled back by an error), the
// portals of a finished transaction close, and the client learns the transaction state.
func (s *session) sync() error {
	if err := s.endImplicit(); err != nil {
		s.sendError(err, "")
	}
	if s.c.autocommit() {
		s.resetPortals()
	}
	s.skipping = false
	s.wbuf = appendReady(s.wbuf, s.status())
	return s.flush()
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

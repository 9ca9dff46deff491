package d1

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// prepared is a parsed statement: the SQLite statement and what the wire protocol says about it.
type prepared struct {
	sql  string
	kind stmtKind
	tag  string
	st   *stmt   // nil for an empty statement and for those the session answers itself
	user *portal // the portal running st, if any; a second portal gets a copy of its own

	slots  []int    // SQLite parameter position -> $N
	params []uint32 // type of each $N
	cols   []column
}

type column struct {
	name string
	decl string // declared type, "" for an expression
}

// Close releases the statement; a portal still running it takes it over.
func (ps *prepared) Close() {
	if ps.user != nil {
		ps.user.own = true
		ps.user = nil
	} else {
		ps.st.finalize()
	}
	ps.st = nil
}

// portal is a statement bound to parameter values, run by Execute or a simple Query.
type portal struct {
	s       *session
	ps      *prepared
	st      *stmt
	own     bool    // st belongs to the portal, not to ps
	formats []int16 // result format codes as Bind gave them

	fields  []pgproto3.FieldDescription // resolved row description
	oids    []uint32
	binary  []bool
	started bool // the statement has been stepped
	row     bool // a row is waiting to be sent
	done    bool
	rows    int64 // rows sent
	changes int64 // rows an INSERT, UPDATE or DELETE changed
}

// newPortal gives the portal a statement of its own use: ps's, or a fresh copy when another
// portal is running ps's.
func (s *session) newPortal(ps *prepared, formats []int16) (*portal, error) {
	p := &portal{s: s, ps: ps, formats: formats}
	if ps.st == nil {
		return p, nil
	}
	if ps.user == nil {
		ps.user = p
		p.st = ps.st
		return p, nil
	}
	st, _, err := s.c.prepare(ps.sql, 0, false)
	if err != nil {
		return nil, err
	}
	p.st, p.own = st, true
	return p, nil
}

// Close releases the portal's hold on its statement.
func (p *portal) Close() {
	if p.st == nil {
		return
	}
	if p.own {
		p.st.finalize()
	} else {
		p.st.reset()
		p.ps.user = nil
	}
	p.st = nil
}

// start runs the statement to its first row.
func (p *portal) start() error {
	if p.started {
		return nil
	}
	p.started = true
	row, err := p.st.step()
	if err != nil {
		p.done = true
		return err
	}
	if p.st.columnCount() != len(p.ps.cols) {
		// SQLite re-prepared the statement after a schema change and it now has other columns.
		p.done, p.row = true, false
		p.st.reset()
		return pgserver.Errorf(codeFeatureNotSupported, "cached plan must not change result type")
	}
	p.row = row
	if !row {
		p.finish()
	}
	return nil
}

func (p *portal) finish() {
	p.done = true
	switch p.ps.kind {
	case kInsert, kUpdate, kDelete:
		p.changes = p.s.c.changes()
	}
}

// resolve settles the row description. A column without a declared type takes its type from its
// first value, so the statement runs to its first row here if it hasn't yet.
func (p *portal) resolve() error {
	if p.fields != nil || len(p.ps.cols) == 0 {
		return nil
	}
	for _, c := range p.ps.cols {
		if oidForDecltype(c.decl) == pgserver.OIDUnknown {
			if err := p.start(); err != nil {
				return err
			}
			break
		}
	}
	n := len(p.ps.cols)
	p.fields = make([]pgproto3.FieldDescription, n)
	p.oids = make([]uint32, n)
	p.binary = make([]bool, n)
	for i, c := range p.ps.cols {
		class := sqlNull
		if p.row {
			class = p.st.columnType(i)
		}
		oid := resultOID(c.decl, class)
		f := pgserver.FormatAt(p.formats, i)
		p.oids[i] = oid
		p.binary[i] = f == 1
		p.fields[i] = pgserver.Field(c.name, oid, f)
	}
	return nil
}

// run sends up to maxRows rows (0: all), then PortalSuspended or CommandComplete; with
// describe it sends the RowDescription first, as a simple Query does.
func (p *portal) run(maxRows int64, describe bool) error {
	s := p.s
	if err := p.start(); err != nil {
		return err
	}
	if err := p.resolve(); err != nil {
		return err
	}
	if describe && len(p.fields) > 0 {
		s.w.Send(&pgproto3.RowDescription{Fields: p.fields})
	}
	var sent int64
	for p.row {
		if maxRows > 0 && sent == maxRows {
			s.w.Out = pgserver.AppendEmpty(s.w.Out, 's') // PortalSuspended
			return nil
		}
		p.appendRow()
		p.rows++
		sent++
		if err := s.w.MaybeFlush(); err != nil {
			return err
		}
		row, err := p.st.step()
		if err != nil {
			p.done = true
			return err
		}
		p.row = row
		if !row {
			p.finish()
		}
	}
	p.complete()
	return nil
}

// appendRow encodes the current row as a DataRow, straight from SQLite's memory.
func (p *portal) appendRow() {
	s := p.s
	var at int
	s.w.Out, at = pgserver.BeginMsg(s.w.Out, 'D')
	s.w.Out = binary.BigEndian.AppendUint16(s.w.Out, uint16(len(p.oids)))
	for i, oid := range p.oids {
		lenAt := len(s.w.Out)
		s.w.Out = append(s.w.Out, 0, 0, 0, 0)
		var ok bool
		s.w.Out, ok = appendValue(s.w.Out, p.st, i, oid, p.binary[i])
		n := uint32(len(s.w.Out) - lenAt - 4)
		if !ok {
			n = 0xffffffff // NULL
		}
		binary.BigEndian.PutUint32(s.w.Out[lenAt:], n)
	}
	s.w.Out = pgserver.FinishMsg(s.w.Out, at)
}

// complete sends the CommandComplete PostgreSQL would for the statement.
func (p *portal) complete() {
	s := p.s
	switch p.ps.kind {
	case kInsert:
		s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "INSERT 0", p.changes, true)
	case kUpdate:
		s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "UPDATE", p.changes, true)
	case kDelete:
		s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "DELETE", p.changes, true)
	case kSelect:
		s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "SELECT", p.rows, true)
	default:
		if len(p.ps.cols) > 0 && p.ps.tag != "EXPLAIN" {
			s.w.Out = pgserver.AppendCommandComplete(s.w.Out, "SELECT", p.rows, true)
		} else {
			s.w.Out = pgserver.AppendCommandComplete(s.w.Out, p.ps.tag, 0, false)
		}
	}
}

// describeColumns builds the RowDescription of a statement before it runs: declared types where
// there are some, and "unknown" (OID 0) for expressions, which lets the client pick the type
// from its own destination.
func (ps *prepared) describeColumns() []pgproto3.FieldDescription {
	fields := make([]pgproto3.FieldDescription, len(ps.cols))
	for i, c := range ps.cols {
		fields[i] = pgserver.Field(c.name, resultOID(c.decl, sqlNull), 0)
	}
	return fields
}

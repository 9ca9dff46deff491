package kv

import (
	"context"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// session is one client connection as package pgserver hands it over: the statements it runs
// against the Namespace's storage. It is driven by one goroutine (pgserver.Serve) and touches
// nothing shared but the Namespace's storage.
type session struct {
	ns  *Namespace
	ctx context.Context
	w   *pgserver.Conn // the client: output, settings, statements and portals
}

var _ pgserver.Handler = (*session)(nil)

// prepared is a parsed statement and the types of its parameters.
type prepared struct {
	st     *statement
	params []uint32
}

// Dial returns the client end of an in-memory connection to a new session on ns. Its signature
// is pgconn.DialFunc's, so a pgconn.Config whose DialFunc is ns.Dial connects to the namespace
// as to any PostgreSQL.
func (ns *Namespace) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return ns.dialWith(ctx, ns.serve)
}

// ServeConn runs one PostgreSQL protocol session on c until the client terminates, the
// connection breaks, ctx ends or the namespace closes; it closes c. A clean end returns nil.
func (ns *Namespace) ServeConn(ctx context.Context, c net.Conn) error {
	return ns.serveWith(ctx, c, ns.serve)
}

// dialWith returns the client end of an in-memory connection to a new session that serve runs
// (either protocol's), counted in until it ends.
func (ns *Namespace) dialWith(ctx context.Context, serve func(context.Context, net.Conn) error) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !ns.enter() {
		return nil, errClosed
	}
	client, server := net.Pipe()
	go func() {
		defer ns.wg.Done()
		_ = serve(ns.ctx, server) // the client sees any failure on its end
	}()
	return client, nil
}

// serveWith runs serve on c as one counted session, unless the namespace is closed; it closes c.
func (ns *Namespace) serveWith(ctx context.Context, c net.Conn, serve func(context.Context, net.Conn) error) error {
	if !ns.enter() {
		c.Close()
		return errClosed
	}
	defer ns.wg.Done()
	return serve(ctx, c)
}

// serve runs a session on nc and closes nc. Ending the context unblocks the session wherever it
// waits: reading (pgserver closes the connection) or in storage (the context is the
// statement's).
func (ns *Namespace) serve(ctx context.Context, nc net.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ns.ctx, cancel)()
	return pgserver.Serve(ctx, nc, pgserver.Config{
		Name:          "kv",
		ServerVersion: "15.0 (slipstream kv)",
		// A value of 25 MiB in hex text, with room to spare.
		MaxMessage: 64 << 20,
		// A CancelRequest is dropped (Cancel is nil): statements here are short and not
		// interruptible; clients get a key because they expect one.
		Closing: "terminating connection: the KV namespace is closing",
	}, &session{ns: ns, ctx: ctx})
}

// Start keeps the client; a namespace session opens nothing of its own.
func (s *session) Start(w *pgserver.Conn, _ map[string]string) (pgserver.Key, error) {
	s.w = w
	return pgserver.Key{}, nil
}

// Close has nothing to release: storage is the Namespace's.
func (s *session) Close() {}

// Status is always idle: there are no transactions.
func (s *session) Status() byte { return 'I' }

// Failed maps a failed extended-protocol message to what the client sees.
func (s *session) Failed(err error) *pgserver.Error { return toPG(err) }

// Sync ends a batch: without transactions every Sync ends its implicit one, and its portals.
func (s *session) Sync() error {
	s.w.ClosePortals()
	return nil
}

// Query runs a Query message. The whole text is matched before anything runs, so a statement
// the namespace refuses leaves the others unrun, as a syntax error does in PostgreSQL. There
// are no transactions: a statement that fails leaves the puts before it done.
func (s *session) Query(sql string) error {
	stmts, err := parseSQL(sql)
	if err != nil {
		s.w.SendError(toPG(err))
		return nil
	}
	ran := false
	for _, st := range stmts {
		if st.verb == vEmpty {
			continue
		}
		ran = true
		if err := s.run(&portal{s: s, ps: &prepared{st: st}}, 0, true); err != nil {
			s.w.SendError(toPG(err))
			break
		}
		if err := s.w.MaybeFlush(); err != nil {
			return err
		}
	}
	if !ran {
		s.w.Out = pgserver.AppendEmpty(s.w.Out, 'I') // EmptyQueryResponse
	}
	return nil
}

// Prepare matches a Parse message's statement and settles its parameters' types.
func (s *session) Prepare(m *pgproto3.Parse) (pgserver.Stmt, error) {
	stmts, err := parseSQL(m.Query)
	if err != nil {
		return nil, err
	}
	if len(stmts) > 1 {
		return nil, pgserver.Errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement")
	}
	st := stmts[0]
	ps := &prepared{st: st, params: make([]uint32, max(len(st.params), len(m.ParameterOIDs)))}
	for i := range ps.params {
		switch {
		case i < len(m.ParameterOIDs) && m.ParameterOIDs[i] != pgserver.OIDUnknown:
			ps.params[i] = m.ParameterOIDs[i]
		case i < len(st.params) && st.params[i] != pgserver.OIDUnknown:
			ps.params[i] = st.params[i]
		default:
			ps.params[i] = pgserver.OIDText // a parameter the statement doesn't use
		}
	}
	return ps, nil
}

// Bind decodes a Bind message's parameters into a portal.
func (s *session) Bind(st pgserver.Stmt, m *pgproto3.Bind) (pgserver.Portal, error) {
	ps := st.(*prepared)
	args := make(values, len(m.Parameters))
	for i, v := range m.Parameters {
		a, err := decodeArg(ps.params[i], pgserver.FormatAt(m.ParameterFormatCodes, i) == 1, v)
		if err != nil {
			return nil, err
		}
		args[i] = a
	}
	return &portal{s: s, ps: ps, args: args, formats: append([]int16(nil), m.ResultFormatCodes...)}, nil
}

// ParamOIDs are the types of the statement's parameters.
func (ps *prepared) ParamOIDs() []uint32 { return ps.params }

// Fields is the row description of the statement's result, with text formats.
func (ps *prepared) Fields() []pgproto3.FieldDescription {
	st := ps.st
	if st.verb != vGet {
		return answeredFields(st)
	}
	fields := make([]pgproto3.FieldDescription, len(st.cols))
	for i, c := range st.cols {
		fields[i] = pgserver.Field(columnNames[c], columnType[c], 0)
	}
	return fields
}

// Close has nothing to release.
func (ps *prepared) Close() {}

// Fields is the row description of the portal's result, in its result formats.
func (p *portal) Fields() ([]pgproto3.FieldDescription, error) {
	fields := p.ps.Fields()
	for i := range fields {
		fields[i].Format = pgserver.FormatAt(p.formats, i)
	}
	return fields, nil
}

// Execute runs the portal for Execute.
func (p *portal) Execute(maxRows int64) error {
	if p.ps.st.verb == vEmpty {
		p.s.w.Out = pgserver.AppendEmpty(p.s.w.Out, 'I') // EmptyQueryResponse
		return nil
	}
	return p.s.run(p, maxRows, false)
}

// Close has nothing to release: a SELECT's pages are the garbage collector's.
func (p *portal) Close() {}

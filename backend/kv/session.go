package kv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	// handshakeTimeout bounds the startup exchange; a client that connects and says nothing is
	// dropped.
	handshakeTimeout = 10 * time.Second
	// maxMessage bounds one frontend message: a value of 25 MiB in hex text, with room to spare.
	maxMessage = 64 << 20
	// flushAt is how much output is buffered before it is written mid-result: rows stream to the
	// client in chunks of this size, and a slow reader stalls the query (TCP or pipe
	// backpressure) instead of growing the buffer.
	flushAt = 32 << 10
)

// session is one client connection: its prepared statements, portals and settings. It is driven
// by one goroutine (serve) and touches nothing shared but the Namespace's storage.
type session struct {
	ns  *Namespace
	nc  net.Conn
	be  *pgproto3.Backend
	ctx context.Context

	buffered int // bytes sent since the last flush, roughly

	settings settings
	stmts    map[string]*prepared
	portals  map[string]*portal
	skipping bool // an extended-protocol message failed: messages are ignored until Sync

	row  []byte   // a DataRow's values, back to back
	vals [][]byte // slices of row
}

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

// serve runs a session on nc and closes nc.
func (ns *Namespace) serve(ctx context.Context, nc net.Conn) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ns.ctx, cancel)()
	// Ending the context unblocks the session wherever it waits: reading (the connection is
	// closed) or in storage (the context is the statement's).
	defer context.AfterFunc(ctx, func() { nc.Close() })()
	be := pgproto3.NewBackend(nc, nc)
	be.SetMaxBodyLen(maxMessage)
	s := &session{ns: ns, nc: nc, be: be, ctx: ctx}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kv: session panic: %v", r)
			s.fatal(&pgError{code: codeInternal, msg: "internal error in the kv backend"})
		}
		nc.Close()
	}()

	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	ok, err := s.startup()
	if !ok || err != nil {
		return err
	}
	nc.SetDeadline(time.Time{})
	err = s.loop()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrClosedPipe) || ctx.Err() != nil {
		return nil
	}
	return err
}

// startup answers SSL and GSS requests with 'N' and accepts a StartupMessage. A CancelRequest is
// dropped: statements here are short and not interruptible. ok is false when the connection
// carried no session.
func (s *session) startup() (ok bool, err error) {
	for {
		m, err := s.be.ReceiveStartupMessage()
		if err != nil {
			s.fatal(errorf(codeProtocolViolation, "invalid startup packet"))
			return false, err
		}
		switch m := m.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			// The edge terminates TLS, not the namespace.
			if _, err := s.nc.Write([]byte{'N'}); err != nil {
				return false, err
			}
			continue
		case *pgproto3.CancelRequest:
			return false, nil
		case *pgproto3.StartupMessage:
			if m.Parameters["user"] == "" {
				s.fatal(&pgError{code: "28000", msg: "no PostgreSQL user name specified in startup packet"})
				return false, nil
			}
			s.stmts = make(map[string]*prepared)
			s.portals = make(map[string]*portal)
			var unknown []string
			for k := range m.Parameters {
				if len(k) > 4 && k[:4] == "_pq_" {
					unknown = append(unknown, k)
				}
			}
			if m.ProtocolVersion != pgproto3.ProtocolVersion30 || len(unknown) > 0 {
				s.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
			}
			s.send(&pgproto3.AuthenticationOk{})
			s.settings.init(m.Parameters)
			for _, name := range reported {
				s.send(&pgproto3.ParameterStatus{Name: name, Value: s.settings.values[strings.ToLower(name)]})
			}
			// Cancel keys are handed out because clients expect one; a CancelRequest is dropped.
			var key [8]byte
			_, _ = rand.Read(key[:])
			pid := binary.BigEndian.Uint32(key[:4])&0x7fffffff | 1
			s.send(&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: key[4:]})
			s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			return true, s.flush()
		}
	}
}

// loop serves messages until Terminate or an error.
func (s *session) loop() error {
	for {
		m, err := s.be.Receive()
		if err != nil {
			if !isIOError(err) {
				// A message that doesn't frame or decode breaks the stream: 08P01, and the
				// session ends.
				msg := "invalid message format"
				var tooLarge *pgproto3.ExceededMaxBodyLenErr
				if errors.As(err, &tooLarge) {
					msg = "message too large: the limit is 64 MiB"
				}
				s.fatal(errorf(codeProtocolViolation, "%s", msg))
			}
			return err
		}
		if s.ctx.Err() != nil {
			s.fatal(toPG(errClosed))
			return s.ctx.Err()
		}
		if _, isSync := m.(*pgproto3.Sync); s.skipping && !isSync {
			if _, isTerminate := m.(*pgproto3.Terminate); !isTerminate {
				continue
			}
		}
		switch m := m.(type) {
		case *pgproto3.Query:
			err = s.simpleQuery(m.String)
		case *pgproto3.Parse:
			s.extended(s.parse(m))
		case *pgproto3.Bind:
			s.extended(s.bind(m))
		case *pgproto3.Describe:
			s.extended(s.describe(m))
		case *pgproto3.Execute:
			s.extended(s.execute(m))
		case *pgproto3.Close:
			s.extended(s.closeObject(m))
		case *pgproto3.Sync:
			// Without transactions every Sync ends the batch's implicit one, and its portals.
			clear(s.portals)
			s.skipping = false
			s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			err = s.flush()
		case *pgproto3.Flush:
			err = s.flush()
		case *pgproto3.Terminate:
			return s.flush()
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Outside COPY these are ignored, as PostgreSQL does.
		case *pgproto3.FunctionCall:
			s.extended(errorf(codeFeatureNotSupported, "the function call protocol is not supported by kv"))
		default:
			s.fatal(errorf(codeProtocolViolation, "unexpected message %T", m))
			return fmt.Errorf("kv: unexpected message %T", m)
		}
		if err != nil {
			return err
		}
		if s.buffered >= flushAt {
			if err := s.flush(); err != nil {
				return err
			}
		}
	}
}

// isIOError reports whether err came from the connection rather than from a message.
func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

func (s *session) send(m pgproto3.BackendMessage) {
	s.be.Send(m)
	s.buffered += 64 // messages other than DataRow are small; DataRows are counted by size
}

func (s *session) flush() error {
	s.buffered = 0
	return s.be.Flush()
}

// fatal sends a FATAL error; the caller then ends the session.
func (s *session) fatal(e *pgError) {
	e.severity = "FATAL"
	s.send(e.response())
	_ = s.flush()
}

// notice sends a warning that doesn't fail the statement.
func (s *session) notice(code, msg string) {
	s.send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: code, Message: msg})
}

// extended reports a failed extended-protocol message and starts skipping to Sync.
func (s *session) extended(err error) {
	if err == nil {
		return
	}
	s.send(toPG(err).response())
	s.skipping = true
}

// simpleQuery runs a Query message. The whole text is matched before anything runs, so a
// statement the namespace refuses leaves the others unrun, as a syntax error does in
// PostgreSQL. There are no transactions: a statement that fails leaves the puts before it done.
func (s *session) simpleQuery(sql string) error {
	stmts, err := parseSQL(sql)
	if err != nil {
		s.send(toPG(err).response())
	} else {
		ran := false
		for _, st := range stmts {
			if st.verb == vEmpty {
				continue
			}
			ran = true
			if err := s.run(&portal{ps: &prepared{st: st}}, 0, true); err != nil {
				s.send(toPG(err).response())
				break
			}
			if s.buffered >= flushAt {
				if err := s.flush(); err != nil {
					return err
				}
			}
		}
		if !ran {
			s.send(&pgproto3.EmptyQueryResponse{})
		}
	}
	s.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return s.flush()
}

func (s *session) parse(m *pgproto3.Parse) error {
	if _, ok := s.stmts[m.Name]; ok && m.Name != "" {
		return errorf(codeDuplicateStatement, "prepared statement %q already exists", m.Name)
	}
	stmts, err := parseSQL(m.Query)
	if err != nil {
		return err
	}
	if len(stmts) > 1 {
		return errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement")
	}
	st := stmts[0]
	ps := &prepared{st: st, params: make([]uint32, max(len(st.params), len(m.ParameterOIDs)))}
	for i := range ps.params {
		switch {
		case i < len(m.ParameterOIDs) && m.ParameterOIDs[i] != oidUnknown:
			ps.params[i] = m.ParameterOIDs[i]
		case i < len(st.params) && st.params[i] != oidUnknown:
			ps.params[i] = st.params[i]
		default:
			ps.params[i] = oidText // a parameter the statement doesn't use
		}
	}
	s.stmts[m.Name] = ps
	s.send(&pgproto3.ParseComplete{})
	return nil
}

func (s *session) bind(m *pgproto3.Bind) error {
	ps, ok := s.stmts[m.PreparedStatement]
	if !ok {
		return errorf(codeUnknownStatement, "prepared statement %q does not exist", m.PreparedStatement)
	}
	if len(m.Parameters) != len(ps.params) {
		return errorf(codeProtocolViolation, "bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, len(ps.params))
	}
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(m.Parameters) {
		return errorf(codeProtocolViolation, "bind message has %d parameter formats but %d parameters", n, len(m.Parameters))
	}
	if n := len(m.ResultFormatCodes); n > 1 && n != len(ps.fields()) {
		return errorf(codeProtocolViolation, "bind message has %d result formats but query has %d columns", n, len(ps.fields()))
	}
	for _, formats := range [][]int16{m.ParameterFormatCodes, m.ResultFormatCodes} {
		for _, f := range formats {
			if f != 0 && f != 1 {
				return errorf(codeProtocolViolation, "unsupported format code: %d", f)
			}
		}
	}
	if _, ok := s.portals[m.DestinationPortal]; ok && m.DestinationPortal != "" {
		return errorf(codeDuplicatePortal, "portal %q already exists", m.DestinationPortal)
	}
	args := make(values, len(m.Parameters))
	for i, v := range m.Parameters {
		a, err := decodeArg(ps.params[i], formatAt(m.ParameterFormatCodes, i) == 1, v)
		if err != nil {
			return err
		}
		args[i] = a
	}
	s.portals[m.DestinationPortal] = &portal{ps: ps, args: args, formats: append([]int16(nil), m.ResultFormatCodes...)}
	s.send(&pgproto3.BindComplete{})
	return nil
}

func (s *session) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		ps, ok := s.stmts[m.Name]
		if !ok {
			return errorf(codeUnknownStatement, "prepared statement %q does not exist", m.Name)
		}
		s.send(&pgproto3.ParameterDescription{ParameterOIDs: ps.params})
		s.rowDescription(ps.fields(), nil)
	case 'P':
		p, ok := s.portals[m.Name]
		if !ok {
			return errorf(codeUnknownPortal, "portal %q does not exist", m.Name)
		}
		s.rowDescription(p.ps.fields(), p.formats)
	default:
		return errorf(codeProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType)
	}
	return nil
}

// rowDescription sends the fields with the given result formats, or NoData for none.
func (s *session) rowDescription(fields []pgproto3.FieldDescription, formats []int16) {
	if len(fields) == 0 {
		s.send(&pgproto3.NoData{})
		return
	}
	for i := range fields {
		fields[i].Format = formatAt(formats, i)
	}
	s.send(&pgproto3.RowDescription{Fields: fields})
}

func (s *session) execute(m *pgproto3.Execute) error {
	p, ok := s.portals[m.Portal]
	if !ok {
		return errorf(codeUnknownPortal, "portal %q does not exist", m.Portal)
	}
	if p.ps.st.verb == vEmpty {
		s.send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	return s.run(p, int64(m.MaxRows), false)
}

func (s *session) closeObject(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		delete(s.stmts, m.Name)
	case 'P':
		delete(s.portals, m.Name)
	default:
		return errorf(codeProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType)
	}
	s.send(&pgproto3.CloseComplete{})
	return nil
}

// closeAll drops every prepared statement and portal.
func (s *session) closeAll() {
	clear(s.stmts)
	clear(s.portals)
}

// fields is the row description of the statement's result, with text formats.
func (ps *prepared) fields() []pgproto3.FieldDescription {
	st := ps.st
	if st.verb != vGet {
		return answeredFields(st)
	}
	fields := make([]pgproto3.FieldDescription, len(st.cols))
	for i, c := range st.cols {
		fields[i] = field(columnNames[c], columnType[c], 0)
	}
	return fields
}

func field(name string, oid uint32, format int16) pgproto3.FieldDescription {
	size := int16(-1)
	if oid == oidInt8 {
		size = 8
	}
	return pgproto3.FieldDescription{
		Name:         []byte(name),
		DataTypeOID:  oid,
		DataTypeSize: size,
		TypeModifier: -1,
		Format:       format,
	}
}

// formatAt is the format code for column or parameter i: none given (all text), one (for all)
// or one each.
func formatAt(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	return formats[i]
}

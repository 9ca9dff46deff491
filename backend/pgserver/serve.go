package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// handshakeTimeout bounds the startup exchange; a client that connects and says nothing is
// dropped.
const handshakeTimeout = 10 * time.Second

// Config describes the server a session presents.
type Config struct {
	// Name is the backend's, as messages name it ("d1", "kv").
	Name string
	// ServerVersion is server_version as ParameterStatus reports it.
	ServerVersion string
	// Settings are run-time parameters beyond PostgreSQL's usual ones, with their defaults.
	Settings map[string]string
	// MaxMessage bounds one frontend message's body; a larger one ends the session with 08P01.
	MaxMessage int
	// Cancel, when set, is called with the process id and secret key of a CancelRequest; nil
	// drops it.
	Cancel func(pid uint32, secret []byte)
	// Closing is the message of the 57P01 a message arriving after the session's context
	// ended is answered with.
	Closing string
}

// Key identifies a session for CancelRequest, as BackendKeyData tells the client.
type Key struct {
	PID    uint32
	Secret uint32
}

// Handler runs, for one session, what the emulation doesn't answer itself. It is used by the
// session's goroutine only.
type Handler interface {
	// Start opens what the session needs, once the startup packet is accepted; a zero Key
	// gets a random one. An *Error is sent as it is; any other ends the session with 58030.
	Start(c *Conn, startup map[string]string) (Key, error)
	// Query runs a simple Query message, appending its results and errors; ReadyForQuery
	// follows with Status. An error is the connection's, and ends the session.
	Query(sql string) error
	// Prepare compiles a Parse message's statement.
	Prepare(m *pgproto3.Parse) (Stmt, error)
	// Bind binds a statement's parameters into a portal; the counts and format codes of m
	// are already checked.
	Bind(st Stmt, m *pgproto3.Bind) (Portal, error)
	// Sync ends an extended-protocol batch; ReadyForQuery follows with Status. An error is
	// reported through Failed.
	Sync() error
	// Failed maps a failed extended-protocol message to what the client sees, and puts the
	// transaction in the state the failure leaves it in.
	Failed(err error) *Error
	// Status is the transaction status ReadyForQuery reports: 'I', 'T' or 'E'.
	Status() byte
	// Close releases the session's resources; its statements and portals are closed first.
	Close()
}

// Stmt is a prepared statement.
type Stmt interface {
	// ParamOIDs are the types of its parameters, for ParameterDescription.
	ParamOIDs() []uint32
	// Fields describe its result columns as known before it runs, in text format; none for a
	// statement that returns no rows.
	Fields() []pgproto3.FieldDescription
	Close()
}

// Portal is a statement bound to parameter values.
type Portal interface {
	// Fields describe its result columns in their result formats; none for no rows.
	Fields() ([]pgproto3.FieldDescription, error)
	// Execute runs it, sending up to maxRows rows (0: all) and then PortalSuspended or
	// CommandComplete.
	Execute(maxRows int64) error
	Close()
}

// Serve runs one PostgreSQL protocol session on nc with h until the client terminates, the
// connection breaks or ctx ends; it closes nc and ends h. A clean end returns nil.
func Serve(ctx context.Context, nc net.Conn, cfg Config, h Handler) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Ending the context unblocks the session wherever it reads: the connection is closed.
	defer context.AfterFunc(ctx, func() { nc.Close() })()
	s := &session{cfg: &cfg, h: h, c: &Conn{nc: nc, r: newReader(nc, cfg.MaxMessage)}, ctx: ctx}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: session panic: %v", cfg.Name, r)
			s.c.Out = s.c.Out[:0]
			s.c.fatal(Errorf(CodeInternal, "internal error in the %s backend", cfg.Name))
		}
		nc.Close()
		if s.started {
			s.c.CloseAll()
			h.Close()
		}
	}()

	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	ok, err := s.startup()
	if ok && err == nil {
		nc.SetDeadline(time.Time{})
		err = s.loop()
	}
	if isIOError(err) || ctx.Err() != nil {
		return nil // the client went away, or the session was told to end
	}
	return err
}

// session is the state of Serve's one connection.
type session struct {
	cfg      *Config
	h        Handler
	c        *Conn
	ctx      context.Context
	started  bool // h.Start succeeded: h.Close is due
	skipping bool // an extended-protocol message failed: messages are ignored until Sync
}

// startup answers SSL and GSS requests with 'N' (the edge terminates TLS), handles
// CancelRequest, and accepts a protocol 3 StartupMessage. ok is false when the connection
// carried a CancelRequest or was refused.
func (s *session) startup() (ok bool, err error) {
	for {
		code, body, err := s.c.r.startup()
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				s.c.fatal(e)
			}
			return false, err
		}
		switch code {
		case 80877103, 80877104: // SSLRequest, GSSENCRequest
			if _, err := s.c.nc.Write([]byte{'N'}); err != nil {
				return false, err
			}
			continue
		case 80877102:
			var m pgproto3.CancelRequest
			if m.Decode(body) == nil && s.cfg.Cancel != nil {
				s.cfg.Cancel(m.ProcessID, m.SecretKey)
			}
			return false, nil
		}
		if code>>16 != 3 {
			s.c.fatal(Errorf(CodeFeatureNotSupported, "unsupported frontend protocol %d.%d: server supports 3.0", code>>16, code&0xffff))
			return false, nil
		}
		var m pgproto3.StartupMessage
		if err := m.Decode(body); err != nil {
			s.c.fatal(Errorf(CodeProtocolViolation, "invalid startup packet"))
			return false, nil
		}
		if m.Parameters["user"] == "" {
			s.c.fatal(Errorf(CodeInvalidAuthSpec, "no PostgreSQL user name specified in startup packet"))
			return false, nil
		}
		return true, s.accept(code, m.Parameters)
	}
}

// accept starts the session for a valid startup packet and sends what PostgreSQL does.
func (s *session) accept(code uint32, params map[string]string) error {
	c := s.c
	c.stmts = make(map[string]Stmt)
	c.portals = make(map[string]Portal)
	c.Settings.init(c, s.cfg, params)
	key, err := s.h.Start(c, params)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = Errorf("58030", "could not open the database")
		}
		c.fatal(e)
		return err
	}
	s.started = true
	// Protocol 3.2 and _pq_ options: say we speak 3.0 and none of them.
	var unknown []string
	for k := range params {
		if len(k) > 4 && k[:4] == "_pq_" {
			unknown = append(unknown, k)
		}
	}
	if code != 3<<16 || len(unknown) > 0 {
		c.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
	}
	c.Send(&pgproto3.AuthenticationOk{})
	for _, name := range reported {
		v, _ := c.Settings.Get(name)
		c.Send(&pgproto3.ParameterStatus{Name: name, Value: v})
	}
	if key == (Key{}) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		key = Key{PID: binary.BigEndian.Uint32(b[:4])&0x7fffffff | 1, Secret: binary.BigEndian.Uint32(b[4:])}
	}
	c.Send(&pgproto3.BackendKeyData{ProcessID: key.PID, SecretKey: binary.BigEndian.AppendUint32(nil, key.Secret)})
	c.Out = AppendReady(c.Out, 'I')
	return c.Flush()
}

// loop serves messages until Terminate or an error.
func (s *session) loop() error {
	c := s.c
	for {
		t, body, err := c.r.next()
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				c.fatal(e)
			}
			return err
		}
		if s.ctx.Err() != nil {
			c.fatal(&Error{Code: CodeAdminShutdown, Message: s.cfg.Closing})
			return s.ctx.Err()
		}
		if s.skipping && t != 'S' && t != 'X' {
			continue
		}
		if err := s.dispatch(t, body); err != nil {
			if errors.Is(err, errTerminate) {
				return c.Flush()
			}
			if !isIOError(err) {
				// A message that doesn't decode breaks the stream: 08P01 and the session ends.
				var e *Error
				if !errors.As(err, &e) {
					e = Errorf(CodeProtocolViolation, "invalid message format")
				}
				c.fatal(e)
			}
			return err
		}
		if err := c.MaybeFlush(); err != nil {
			return err
		}
	}
}

// errTerminate is dispatch's answer to Terminate.
var errTerminate = errors.New("pgserver: terminate")

// dispatch decodes one message and handles it. Its error is one of the connection or of a
// message that doesn't decode (an *Error says what the client is told); a failed statement is
// reported to the client instead.
func (s *session) dispatch(t byte, body []byte) error {
	var m pgproto3.FrontendMessage
	switch t {
	case 'Q':
		var q pgproto3.Query
		if err := q.Decode(body); err != nil {
			return err
		}
		if err := s.h.Query(q.String); err != nil {
			return err
		}
		return s.ready()
	case 'S':
		return s.sync()
	case 'H':
		return s.c.Flush()
	case 'X':
		return errTerminate
	case 'd', 'c', 'f':
		return nil // CopyData, CopyDone, CopyFail outside COPY are ignored, as PostgreSQL does
	case 'F':
		s.fail(Errorf(CodeFeatureNotSupported, "the function call protocol is not supported by %s", s.cfg.Name))
		return nil
	case 'P':
		m = &pgproto3.Parse{}
	case 'B':
		m = &pgproto3.Bind{}
	case 'D':
		m = &pgproto3.Describe{}
	case 'E':
		m = &pgproto3.Execute{}
	case 'C':
		m = &pgproto3.Close{}
	default:
		return Errorf(CodeProtocolViolation, "invalid frontend message type %d", t)
	}
	if err := m.Decode(body); err != nil {
		return err
	}
	s.fail(s.extended(m))
	return nil
}

// ready ends a simple Query or a batch with ReadyForQuery and sends what is buffered.
func (s *session) ready() error {
	s.c.Out = AppendReady(s.c.Out, s.h.Status())
	return s.c.Flush()
}

// isIOError reports whether err came from the connection rather than from a message.
func isIOError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

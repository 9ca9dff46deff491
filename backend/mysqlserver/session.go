package mysqlserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	gostmt "github.com/go-mysql-org/go-mysql/stmt"
)

// handshakeTimeout bounds the connection phase; a client that connects and says nothing is
// dropped.
const handshakeTimeout = 10 * time.Second

// flushAt is how much output is buffered before it is written mid-result.
const flushAt = 32 << 10

// Backend runs, for one session, the statements the session doesn't answer itself. It is used
// by the session's goroutine only.
type Backend interface {
	// Query runs one statement of the text protocol, writing its result with w.
	Query(w *Results, sql string) error
	// Prepare compiles one statement for COM_STMT_PREPARE.
	Prepare(sql string) (Stmt, error)
	// SetAutocommit turns autocommit on or off, as SET autocommit does; turning it on
	// commits an open transaction.
	SetAutocommit(on bool) error
	// InTransaction reports whether a transaction is open.
	InTransaction() bool
	// Reset rolls back an open transaction and turns autocommit on, for COM_RESET_CONNECTION.
	Reset() error
	// Close releases the session's resources.
	Close()
}

// Stmt is a prepared statement.
type Stmt interface {
	// Params is the number of ? placeholders.
	Params() int
	// Columns are the result columns as known before the statement runs.
	Columns() []Column
	// Execute runs the statement with args, as go-mysql decodes them from COM_STMT_EXECUTE:
	// nil, int8…int64, uint8…uint64, float32, float64, mysql.TypedBytes, []byte.
	Execute(w *Results, args []any) error
	Close()
}

// Config describes the server a session presents.
type Config struct {
	Database      string // the one database; COM_INIT_DB and USE accept only this name
	ServerVersion string // as the handshake and @@version report it, e.g. "8.0.36-slipstream-d1"
	Comment       string // @@version_comment
}

// session is one client connection; it implements go-mysql's server.Handler.
type session struct {
	cfg  Config
	b    Backend
	c    *server.Conn
	vars *vars

	stmts        map[*gostmt.PreparedStmt]Stmt
	lastInsertID uint64 // of the last statement that inserted, for LAST_INSERT_ID()
}

var _ server.Handler = (*session)(nil)

// Serve runs one MySQL protocol session on nc with b until the client quits, the connection
// breaks or ctx ends; it closes nc and b. Any user name and password are accepted: the session
// is reached in-process, from an edge that authenticated the client, or from a loopback
// listener. A clean end returns nil.
func Serve(ctx context.Context, nc net.Conn, cfg Config, b Backend) (err error) {
	defer b.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(ctx, func() { nc.Close() })()
	bc := &bufferedConn{Conn: nc, w: bufio.NewWriterSize(nc, flushAt)}
	s := &session{cfg: cfg, b: b, vars: newVars(cfg), stmts: make(map[*gostmt.PreparedStmt]Stmt)}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("mysqlserver: session panic: %v", r)
		}
		bc.w.Flush()
		nc.Close()
		for _, st := range s.stmts {
			st.Close()
		}
	}()

	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	srv := server.NewServerWithAuth(cfg.ServerVersion, collationUTF8MB4, mysql.AUTH_NATIVE_PASSWORD, nil, nil, anyPassword{})
	c, err := srv.NewCustomizedConn(bc, anyUser{s}, s)
	if err != nil {
		return quiet(ctx, err)
	}
	nc.SetDeadline(time.Time{})
	s.c = c
	bc.framing = true
	for !c.Closed() {
		if err := c.HandleCommand(); err != nil {
			if bc.malformed {
				return errMalformed
			}
			return quiet(ctx, err)
		}
	}
	return nil
}

// quiet turns the ways a client leaves into a clean end.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, mysql.ErrBadConn) {
		return nil
	}
	return err
}

// bufferedConn collects what the session writes and sends it before the session next reads:
// a result goes out in a few large writes, not one per packet.
//
// Once the handshake is done it also follows the packet headers the client sends, to refuse an
// empty command packet before go-mysql reads it: go-mysql indexes the command byte of a packet
// without checking that there is one.
type bufferedConn struct {
	net.Conn
	w *bufio.Writer

	framing   bool    // headers are followed
	header    [4]byte // the header being read
	inHeader  int     // bytes of it read so far
	left      int     // payload bytes of the current packet still to come
	continued bool    // the last packet was full-size: the next one continues it
	malformed bool    // an empty command packet arrived
}

// errMalformed ends a session whose client sent an empty command packet.
var errMalformed = errors.New("mysqlserver: empty command packet")

func (c *bufferedConn) Write(b []byte) (int, error) { return c.w.Write(b) }

func (c *bufferedConn) Read(b []byte) (int, error) {
	if c.w.Buffered() > 0 {
		if err := c.w.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(b)
	if c.framing {
		if ferr := c.follow(b[:n]); ferr != nil {
			return 0, ferr
		}
	}
	return n, err
}

// follow walks the packet headers in b.
func (c *bufferedConn) follow(b []byte) error {
	for len(b) > 0 {
		if c.left > 0 {
			k := min(c.left, len(b))
			c.left -= k
			b = b[k:]
			continue
		}
		k := copy(c.header[c.inHeader:], b)
		c.inHeader += k
		b = b[k:]
		if c.inHeader < 4 {
			return nil
		}
		c.inHeader = 0
		c.left = int(c.header[0]) | int(c.header[1])<<8 | int(c.header[2])<<16
		if c.left == 0 && !c.continued {
			// The session ends with a protocol error, as MySQL ends it.
			c.malformed = true
			msg := "#08S01Malformed communication packet"
			ack := []byte{byte(len(msg) + 3), 0, 0, c.header[3] + 1, mysql.ERR_HEADER, erMalformedPacket & 0xff, erMalformedPacket >> 8}
			c.w.Write(append(ack, msg...))
			c.w.Flush()
			return errMalformed
		}
		c.continued = c.left == 1<<24-1
	}
	return nil
}

// anyPassword accepts every password: see Serve.
type anyPassword struct{}

func (anyPassword) Authenticate(*server.Conn, string, []byte) error { return nil }
func (anyPassword) Validate(string) bool                            { return true }

// anyUser knows every user, and sets the session's status flags before the handshake's OK.
type anyUser struct{ s *session }

func (anyUser) GetCredential(string) (server.Credential, bool, error) {
	return server.Credential{Passwords: []string{""}, AuthPluginName: mysql.AUTH_NATIVE_PASSWORD}, true, nil
}

func (u anyUser) OnAuthSuccess(c *server.Conn) error {
	u.s.c = c
	u.s.syncStatus()
	return nil
}

func (anyUser) OnAuthFailure(*server.Conn, error) {}

// status is the status flags every OK and EOF carries: autocommit and an open transaction as
// they are now (the pool leases a connection per transaction by reading them), and
// NO_BACKSLASH_ESCAPES, because string literals here follow it (see lex.go).
func (s *session) status() uint16 {
	flags := mysql.SERVER_STATUS_NO_BACKSLASH_ESCAPED
	if s.vars.autocommit {
		flags |= mysql.SERVER_STATUS_AUTOCOMMIT
	}
	if s.b.InTransaction() {
		flags |= mysql.SERVER_STATUS_IN_TRANS
	}
	return flags
}

// syncStatus gives go-mysql the status flags for the OK packets it writes.
func (s *session) syncStatus() {
	s.c.UnsetStatus(0xffff)
	s.c.SetStatus(s.status())
}

// writeEOF ends a column list or a result set, carrying the current status.
func (s *session) writeEOF() error {
	st := s.status()
	return s.c.WritePacket([]byte{0, 0, 0, 0, mysql.EOF_HEADER, 0, 0, byte(st), byte(st >> 8)})
}

// writeError sends an ERR packet.
func (s *session) writeError(e *mysql.MyError) error {
	data := make([]byte, 4, 16+len(e.Message))
	data = append(data, mysql.ERR_HEADER, byte(e.Code), byte(e.Code>>8), '#')
	data = append(data, e.State...)
	data = append(data, e.Message...)
	return s.c.WritePacket(data)
}

// sent is what a handler returns for a result set it already wrote: go-mysql writes nothing
// more for it.
var sent = &mysql.Result{Resultset: &mysql.Resultset{
	Fields:        []*mysql.Field{{}},
	Streaming:     mysql.StreamingMultiple,
	StreamingDone: true,
}}

// finish turns what a statement did into the handler's answer.
func (s *session) finish(w *Results, err error) (*mysql.Result, error) {
	s.syncStatus()
	if err != nil {
		// Written here rather than returned: go-mysql wraps an error from a statement's
		// execution and would then report it as 1105.
		if err := s.writeError(toMy(err)); err != nil {
			return nil, err
		}
		return sent, nil
	}
	if w.started {
		if err := s.writeEOF(); err != nil {
			return nil, err
		}
		return sent, nil
	}
	if w.ok.InsertId != 0 {
		s.lastInsertID = w.ok.InsertId
	}
	r := w.ok
	return &r, nil
}

// toMy passes a backend's *mysql.MyError on and hides anything else's text.
func toMy(err error) *mysql.MyError {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "internal error"}
}

// UseDB handles COM_INIT_DB, USE, and the database named in the handshake.
func (s *session) UseDB(name string) error {
	if name != s.cfg.Database {
		return errorf(erBadDB, "42000", "Unknown database '%s'", name)
	}
	return nil
}

// HandleQuery handles COM_QUERY: a session statement here, anything else in the backend.
func (s *session) HandleQuery(sql string) (*mysql.Result, error) {
	w := &Results{s: s}
	handled, err := s.sessionStatement(w, sql)
	if !handled {
		err = s.b.Query(w, sql)
	}
	return s.finish(w, err)
}

// HandleFieldList answers COM_FIELD_LIST (the mysql CLI's column completion) with the columns
// of SELECT * FROM table.
func (s *session) HandleFieldList(table, _ string) ([]*mysql.Field, error) {
	st, err := s.b.Prepare("SELECT * FROM `" + strings.ReplaceAll(table, "`", "``") + "`")
	if err != nil {
		return nil, toMy(err)
	}
	defer st.Close()
	var fs []*mysql.Field
	for _, c := range st.Columns() {
		// COM_FIELD_LIST's definitions end with the column's default: NULL, as far as told.
		fs = append(fs, &mysql.Field{Data: append(c.definition(s.cfg.Database), 0xfb)})
	}
	return fs, nil
}

// HandleStmtPrepare handles COM_STMT_PREPARE. The statement's context is the go-mysql
// PreparedStmt that carries its parameter and column definitions.
func (s *session) HandleStmtPrepare(sql string) (int, int, any, error) {
	var st Stmt
	if isSessionStatement(sql) {
		st = &sessionStmt{s: s, sql: sql}
	} else {
		var err error
		if st, err = s.b.Prepare(sql); err != nil {
			return 0, 0, nil, toMy(err)
		}
	}
	cols := st.Columns()
	ps := &gostmt.PreparedStmt{Params: st.Params(), Columns: len(cols)}
	param := Column{Name: "?", Type: TypeVarString}.definition("")
	for range ps.Params {
		ps.RawParamFields = append(ps.RawParamFields, param)
	}
	for _, c := range cols {
		ps.RawColumnFields = append(ps.RawColumnFields, c.definition(s.cfg.Database))
	}
	s.stmts[ps] = st
	return ps.Params, ps.Columns, ps, nil
}

// HandleStmtExecute handles COM_STMT_EXECUTE.
func (s *session) HandleStmtExecute(ctx any, _ string, args []any) (*mysql.Result, error) {
	ps, _ := ctx.(*gostmt.PreparedStmt)
	st, ok := s.stmts[ps]
	if !ok {
		return nil, errorf(erUnknownStmtHandler, "HY000", "Unknown prepared statement handler given to mysqld_stmt_execute")
	}
	w := &Results{s: s, binary: true}
	return s.finish(w, st.Execute(w, args))
}

// HandleStmtClose handles COM_STMT_CLOSE.
func (s *session) HandleStmtClose(ctx any) error {
	ps, _ := ctx.(*gostmt.PreparedStmt)
	if st, ok := s.stmts[ps]; ok {
		st.Close()
		delete(s.stmts, ps)
	}
	return nil
}

// HandleOtherCommand handles COM_RESET_CONNECTION and COM_SET_OPTION and refuses the rest.
func (s *session) HandleOtherCommand(cmd byte, _ []byte) error {
	defer s.syncStatus()
	switch cmd {
	case mysql.COM_RESET_CONNECTION:
		for ps, st := range s.stmts {
			st.Close()
			delete(s.stmts, ps)
		}
		s.vars = newVars(s.cfg)
		if err := s.b.Reset(); err != nil {
			return toMy(err)
		}
		return nil
	case mysql.COM_SET_OPTION:
		return nil // multi-statements on or off: a query holds one statement either way
	}
	return errorf(erUnknownCom, "08S01", "Unknown command %d", cmd)
}

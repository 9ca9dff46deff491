package pgserver

import (
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Conn is one client connection as a Handler sees it: the output it appends to, the session's
// settings, and its prepared statements and portals by name. It belongs to the session's
// goroutine.
type Conn struct {
	// Out is the output not yet written: a Handler appends messages to it (AppendMsg, the
	// Append functions, or directly for rows) and calls MaybeFlush while a result streams.
	Out []byte
	// Settings are the session's run-time parameters.
	Settings Settings

	nc      net.Conn
	r       *reader
	stmts   map[string]Stmt
	portals map[string]Portal
}

// Send appends a message to the output.
func (c *Conn) Send(m pgproto3.BackendMessage) { c.Out = AppendMsg(c.Out, m) }

// SendError appends an ErrorResponse.
func (c *Conn) SendError(e *Error) { c.Out = AppendMsg(c.Out, e.Response()) }

// Notice appends a warning that doesn't fail the statement.
func (c *Conn) Notice(code, msg string) {
	c.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: code, Message: msg})
}

// Flush writes the output.
func (c *Conn) Flush() error {
	if len(c.Out) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.Out)
	c.Out = c.Out[:0]
	return err
}

// MaybeFlush writes out a large result as it is produced.
func (c *Conn) MaybeFlush() error {
	if len(c.Out) >= flushAt {
		return c.Flush()
	}
	return nil
}

// NextIs reports whether the client's next message, if already received, has type t (e.g. 'S'
// for a Sync right behind an Execute).
func (c *Conn) NextIs(t byte) bool { return c.r.nextIs(t) }

// fatal sends a FATAL error; the caller then ends the session. A client that doesn't read it
// within a second doesn't hold the session open.
func (c *Conn) fatal(e *Error) {
	cp := *e
	cp.Severity = "FATAL"
	c.SendError(&cp)
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.Flush()
}

// Stmt returns a prepared statement by name.
func (c *Conn) Stmt(name string) (Stmt, bool) {
	st, ok := c.stmts[name]
	return st, ok
}

// Deallocate closes a prepared statement, as DEALLOCATE name does.
func (c *Conn) Deallocate(name string) error {
	st, ok := c.stmts[name]
	if !ok {
		return Errorf(CodeUnknownStatement, "prepared statement %q does not exist", name)
	}
	st.Close()
	delete(c.stmts, name)
	return nil
}

// DeallocateAll closes every prepared statement, as DEALLOCATE ALL does.
func (c *Conn) DeallocateAll() {
	for name, st := range c.stmts {
		st.Close()
		delete(c.stmts, name)
	}
}

// ClosePortals closes every portal, as the end of a transaction does in PostgreSQL.
func (c *Conn) ClosePortals() {
	for name, p := range c.portals {
		p.Close()
		delete(c.portals, name)
	}
}

// CloseAll closes every portal and prepared statement, as DISCARD ALL does.
func (c *Conn) CloseAll() {
	c.ClosePortals()
	c.DeallocateAll()
}

package pool

import (
	"bytes"
	"context"
	"slices"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Sending a unit again on another connection. Slots never hands out an idle connection the
// origin has closed (Dead), but the origin can close one between that check and the unit's
// write. The unit is then sent again, on another connection, when the origin provably never
// read it (DESIGN.md invariant 2), which is when all of these hold:
//
//   - it is the first thing written on the connection since the session leased it (from the
//     idle list, or dialled for it), in one Send, with no COPY data, and the session was not
//     pinned before it;
//   - nothing came back but end of stream, a reset, or the FATAL that PostgreSQL sends on a
//     connection it ends from outside (57P01 admin_shutdown: pg_terminate_backend, a smart or
//     fast shutdown; 57P05 idle_session_timeout), which is held back from the client until
//     the unit is past this point.
//
// So no statement of the unit completed, and none committed: PostgreSQL answers a statement
// (ParseComplete, BindComplete, RowDescription...) before it runs it, writes its
// CommandComplete before the commit of its implicit transaction can be acted on (a simple
// Query commits with interrupts held and writes CommandComplete and ReadyForQuery before it
// reads again, where a pending terminate is acted on; an extended-protocol Execute sends
// CommandComplete before the Sync that commits), and its output reaches the socket in order,
// the FATAL last. A reset or an end of stream with nothing before it is a connection closed
// under the unit. A statement that ends its own backend without a word before it (a DO block
// calling pg_terminate_backend(pg_backend_pid())) looks the same: it runs up to maxResends+1
// times, each time on a new connection, and then the client gets its FATAL.
//
// The unit is sent as it was, after what the new connection lacks that the old one held: the
// session's settings, and the statements the unit binds or describes without parsing them.
// What went in front of the unit for the old connection's sake (its settings query, or such a
// prefix of an earlier resend) is the old connection's: it is not kept with the unit, and its
// answers still due are dropped from the queue, whether or not the old connection answered
// some of it before it ended (the origin can end a connection between its answer to the
// settings query and reading the unit). A statement the unit parses that the new connection
// holds already (another session prepared the same text there) is closed there first, so that
// the origin does not answer 42P05 for a name the client never saw.
// It goes out at most maxResends times; after that, or when that cannot be rebuilt, the client
// gets what the origin said (the held FATAL) and its connection ends, as it would direct.

// maxResends bounds the connections one unit is sent again on.
const maxResends = 3

// maxResendBytes bounds the unit kept for sending again: a larger one is never sent again.
const maxResendBytes = 1 << 20

// resendState is what Recv needs to send the unit again. It is guarded by the session's mutex.
type resendState struct {
	armed bool   // the unit may still be sent again: nothing but an ending FATAL came back
	buf   []byte // the unit as written on the connection since the session leased it
	fatal []byte // the FATAL held back while armed, or nil
	tries int    // connections the unit was sent again on
}

// armResend keeps the bytes of a unit just written on a connection, when the unit may be sent
// again (ok), and forgets the last unit's otherwise. The unit's entries are the whole queue;
// a settings query in front of it is the connection's and is not kept. s.mu is held.
func (s *Session) armResend(ok bool, wbuf []byte) {
	r := &s.rs
	if ok && s.queued() > 0 && s.head().lead {
		if _, rest, more := pgwire.NextFrame(wbuf); more {
			wbuf = rest
		}
	}
	r.armed, r.fatal, r.tries = ok && len(wbuf) <= maxResendBytes, nil, 0
	if r.armed {
		r.buf = append(r.buf[:0], wbuf...)
	} else if cap(r.buf) > 64<<10 {
		r.buf = nil
	}
}

// holdBack holds back the FATAL that ends a connection while the unit may still be sent
// again, and reports whether it did. Any other answer means the origin read the unit: it is
// not sent again, and a FATAL held so far goes to the client first (unhold). s.mu is held.
func (s *Session) holdBack(typ byte, body []byte) bool {
	r := &s.rs
	if typ == 'E' && r.fatal == nil && endsIdleConn(body) {
		r.fatal = bytes.Clone(body)
		return true
	}
	if r.fatal == nil && typ != 'E' && s.queued() > 0 && s.head().lead {
		return false // an answer to what was sent in front of the unit: swallowed, still armed
	}
	r.armed = false
	return false
}

// unhold passes a held FATAL on, once the unit is not sent again. s.mu is held.
func (s *Session) unhold(c *Conn, dst []byte) ([]byte, error) {
	f := s.rs.fatal
	if f == nil {
		return dst, nil
	}
	s.rs.fatal = nil
	return s.handle(c, 'E', f, dst)
}

// resend sends the unit again on another connection after dead ended under it unread, and
// reports whether it did. When it did not, dead is no longer the session's (readFailed only
// clears up). s.mu is held; it is let go while leasing and writing.
func (s *Session) resend(ctx context.Context, dead *Conn) bool {
	r := &s.rs
	for s.sending && !s.closed {
		// Send has yet to finish writing the unit on dead; while the unit is armed it takes a
		// failed write for this resend's to make. Waiting costs nothing: a write on a
		// connection the origin ended fails.
		s.wake.Wait()
	}
	if !r.armed || s.closed || r.tries >= maxResends {
		r.armed = false // another batch went out meanwhile, or the session ended
		return false
	}
	r.armed = false
	r.tries++
	s.conn = nil
	dead.broken = true
	s.p.Release(dead)
	s.reading = true // Close finds no connection to release; we check closed after
	s.mu.Unlock()
	c, err := s.p.Acquire(ctx)
	s.mu.Lock()
	s.reading = false
	if err != nil {
		return false
	}
	for s.queued() > 0 && s.head().lead {
		s.pop() // dead's own: whatever of it dead did not answer, c gets anew if it needs it
	}
	pre, entries, ok := s.replayPrefix(c, r.buf)
	if s.closed || !ok {
		s.p.Release(c)
		return false
	}
	if s.due > s.popped {
		s.due += uint64(len(entries)) // they come before every answer due
	}
	s.queue = slices.Insert(s.queue, s.qhead, entries...)
	s.conn = c
	r.fatal = nil  // the old connection's: the client never needs it now
	r.armed = true // that one may be killed before it reads the unit just as well
	s.p.m.m.Resent(s.p.cfg.Name)
	s.log.Debug("the origin closed an idle connection before reading a unit; sent it on another", "try", r.tries)
	s.reading = true
	s.mu.Unlock()
	_, werr := c.nc.Write(append(pre, r.buf...))
	s.mu.Lock()
	s.reading = false
	if werr != nil {
		c.broken = true // the read that follows fails, and decides
	}
	if s.closed {
		s.finish(c, false)
		return false
	}
	return true
}

// replayPrefix returns what must go in front of the unit sent (as written on the old
// connection, without its settings query) for c to run it as the old one would have: the
// session's settings, the statements the unit uses without parsing them, and a Close of each
// statement it parses that c holds already, with the answers they draw (all swallowed, all
// lead). It reports false when that cannot be known; c is left as it was then. s.mu is held.
func (s *Session) replayPrefix(c *Conn, sent []byte) ([]byte, []pending, bool) {
	need, unnamed, ok := usedUnparsed(c, sent)
	if !ok {
		return nil, nil, false
	}
	var pre []byte
	var entries []pending
	key := s.settings.key
	if c.state != key {
		q := key
		if q == "" {
			q = "RESET ALL"
		}
		pre = pgwire.AppendFrame(pre, 'Q', append([]byte(q), 0))
		entries = append(entries, pending{kind: pSetup, swallow: true, state: key, lead: true})
	}
	parsed := parsedIn(sent)
	for _, name := range parsed {
		if _, has := c.prepared[name]; has {
			// The same name is the same text, types and settings: parsing it again is no change.
			pre = pgwire.AppendFrame(pre, 'C', append(append([]byte{'S'}, name...), 0))
			entries = append(entries, pending{kind: pClose, swallow: true, lead: true})
		}
	}
	if unnamed && len(s.unnamed) > 0 {
		pre = pgwire.AppendFrame(pre, 'P', s.unnamed)
		entries = append(entries, pending{kind: pParse, swallow: true, lead: true})
	}
	var parses [][]byte
	for _, name := range need {
		st := s.stmtByServer(name)
		if st == nil {
			return nil, nil, false
		}
		parses = append(parses, st.parse)
	}
	for i, name := range need {
		pre = pgwire.AppendFrame(pre, 'P', parses[i])
		entries = append(entries, pending{kind: pParse, swallow: true, prepared: name, lead: true})
	}
	c.state = key
	c.unnamedBy = nil // the next unit that binds the unnamed statement parses it again
	for _, name := range append(need, parsed...) {
		c.prepared[name] = struct{}{}
	}
	return pre, entries, true
}

// stmtByServer returns the session's statement with server-side name name, or nil.
func (s *Session) stmtByServer(name string) *stmt {
	for _, st := range s.stmts {
		if st.server == name {
			return st
		}
	}
	return nil
}

// usedUnparsed returns the named statements that the origin messages in sent bind or describe
// without parsing them first and that c lacks, and whether they use the session's unnamed
// statement as it was before them. It reports false when they parse the unnamed statement
// after using the one before: the session keeps only the newer.
func usedUnparsed(c *Conn, sent []byte) (need []string, unnamed, ok bool) {
	parsed := make(map[string]bool)
	unnamedParsed := false
	use := func(name string) {
		switch {
		case name == "":
			unnamed = unnamed || !unnamedParsed
		case !parsed[name]:
			parsed[name] = true
			if _, has := c.prepared[name]; !has {
				need = append(need, name)
			}
		}
	}
	for rest := sent; len(rest) > 0; {
		f, next, more := pgwire.NextFrame(rest)
		if !more {
			break
		}
		rest = next
		switch f.Type {
		case 'P':
			name, _, _ := cstring(f.Body)
			if name == "" && unnamed {
				return nil, false, false
			}
			unnamedParsed = unnamedParsed || name == ""
			parsed[name] = true
		case 'Q':
			unnamedParsed = true // a Query drops it; whatever binds it after parses it again
		case 'B':
			if _, r, okp := cstring(f.Body); okp {
				name, _, _ := cstring(r)
				use(name)
			}
		case 'D':
			if len(f.Body) > 0 && f.Body[0] == 'S' {
				name, _, _ := cstring(f.Body[1:])
				use(name)
			}
		}
	}
	return need, unnamed, true
}

// parsedIn returns the named statements that the origin messages in sent parse.
func parsedIn(sent []byte) []string {
	var names []string
	for rest := sent; len(rest) > 0; {
		f, next, more := pgwire.NextFrame(rest)
		if !more {
			break
		}
		rest = next
		if f.Type == 'P' {
			if name, _, _ := cstring(f.Body); name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

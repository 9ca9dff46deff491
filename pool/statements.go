package pool

import (
	"bytes"
	"maps"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Statement names keep PostgreSQL's semantics although they are virtualised:
//
//   - A Parse of a name the client already uses is sent to the origin under the existing
//     statement's server name, so that the origin itself answers 42P05 at that message (and
//     aborts the implicit transaction and skips to Sync, as PostgreSQL does); the server name
//     in its message is put back to the client's (renameError).
//   - A Parse that fails, or that the origin skipped after an earlier error, creates no name:
//     the session forgets it when the error comes (forgetFailed); a Close the origin
//     skipped removes none (keepClosed).
//   - Shared server statements never outlive the catalog they were planned with: the pool's
//     statement generation goes into every server name, and moves on when a unit's
//     CommandComplete says it altered or dropped something, or when the origin reports a
//     statement gone stale (0A000 cached plan must not change result type, XX000 cache lookup
//     failed). A client's statement prepared before keeps its old server statement, and so its
//     fate, as on a direct connection; one prepared after is planned afresh.
//   - The unnamed statement is the session's own: a connection that holds another's (or the
//     one its dial left) gets a Close of it before the session binds or describes it without
//     having one, so that the origin answers 26000; a failed Parse of it, or a simple Query,
//     leaves the session none.
//   - SQL PREPARE, EXECUTE and DEALLOCATE name statements on the origin connection itself. The
//     first of them pins the session and switches it to raw names: every statement the client
//     has is prepared on the connection under the client's own name, and from then on names go
//     through as the client wrote them, so that SQL and protocol names share one namespace,
//     as on a direct connection.

// staleStatement reports whether an origin error means a server statement is stale for good.
func staleStatement(body []byte) bool {
	code := errorField(body, 'C')
	return bytes.Equal(code, []byte("0A000")) || bytes.Equal(code, []byte("XX000")) &&
		bytes.HasPrefix(errorField(body, 'M'), []byte("cache lookup failed"))
}

// ddlTag reports whether a CommandComplete tag is one of a statement that altered or dropped
// a catalog object.
func ddlTag(tag []byte) bool {
	return bytes.HasPrefix(tag, []byte("ALTER ")) || bytes.HasPrefix(tag, []byte("DROP "))
}

// errorField returns one field of an ErrorResponse body, or nil.
func errorField(body []byte, typ byte) []byte {
	for len(body) > 1 && body[0] != 0 {
		t := body[0]
		i := bytes.IndexByte(body[1:], 0)
		if i < 0 {
			return nil
		}
		if t == typ {
			return body[1 : 1+i]
		}
		body = body[2+i:]
	}
	return nil
}

// renameError puts the client's statement name in place of its server name in an error
// body. It appends to dst.
func renameError(dst, body []byte, server, client string) []byte {
	if server == "" || server == client {
		return pgwire.AppendFrame(dst, 'E', body)
	}
	q := func(n string) []byte { return []byte(`"` + n + `"`) }
	return pgwire.AppendFrame(dst, 'E', bytes.ReplaceAll(body, q(server), q(client)))
}

// forgetFailed forgets the name a Parse would have created, when its Parse failed or was
// skipped. s.mu is held.
func (s *Session) forgetFailed(p *pending) {
	if p.stmt != nil && s.stmts[p.client] == p.stmt {
		delete(s.stmts, p.client)
	}
}

// useRawNames switches the session to raw statement names before a statement that uses SQL
// prepared statements (e effect) is sent: its statements are prepared on c under the client's
// names, answers swallowed.
func (s *Session) useRawNames(c *Conn, e classify.Effect, entries []pending) []pending {
	if e.Pin != classify.PinPrepare || s.raw {
		return entries
	}
	s.mu.Lock()
	s.raw = true
	stmts := maps.Clone(s.stmts)
	s.mu.Unlock()
	for name, st := range stmts {
		// The record changes in place: a Parse of it still in flight that fails or is
		// skipped forgets it (forgetFailed knows it by its pointer).
		s.mu.Lock()
		st.rename(name)
		s.mu.Unlock()
		c.markPrepared(&s.mu, name)
		s.wbuf = pgwire.AppendFrame(s.wbuf, 'P', st.parse)
		entries = append(entries, pending{kind: pParse, swallow: true, prepared: name})
	}
	return entries
}

// rename makes the statement's server name name (raw names: the client's).
func (st *stmt) rename(name string) {
	st.parse = append(append([]byte(name), 0), st.parse[len(st.server)+1:]...)
	st.server = name
}

// keepClosed undoes a Close of a named statement that the origin skipped after an error: the
// statement stays, as in PostgreSQL, in place of any Parse of the name after it (skipped too).
// A statement closed before the session turned to raw names takes its raw name, to be
// prepared under it before its next use. s.mu is held.
func (s *Session) keepClosed(c *Conn, p *pending) {
	if p.stmt == nil {
		return
	}
	s.stmts[p.client] = p.stmt
	switch {
	case !s.raw:
	case p.stmt.server != p.client:
		p.stmt.rename(p.client)
	default:
		c.prepared[p.client] = struct{}{} // the origin still holds it
	}
}

// stmt returns the client's named statement, or nil.
func (s *Session) stmt(name string) *stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stmts[name]
}

// setStmt records a client's named statement; Recv reads the map under s.mu.
func (s *Session) setStmt(name string, st *stmt) {
	s.mu.Lock()
	s.stmts[name] = st
	s.mu.Unlock()
}

// dropStmt forgets a client's named statement.
func (s *Session) dropStmt(name string) {
	s.mu.Lock()
	delete(s.stmts, name)
	s.mu.Unlock()
}

// naming records in p the server and client names of the statement a Bind or Describe names,
// so that an error quoting the server name reaches the client with its own.
func (s *Session) naming(p pending, name string) pending {
	if st := s.stmt(name); st != nil && name != "" {
		p.server, p.client = st.server, name
	}
	return p
}

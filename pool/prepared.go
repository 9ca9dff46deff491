package pool

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Statement names: a client's named statement S1 runs on origin connections as ss_<hash of its
// text and parameter types>. Two clients preparing the same text share the server statement;
// two clients using the same name for different texts never collide; a connection prepares each
// text once and remembers it.

// cstring splits a NUL-terminated string off the front of b.
func cstring(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// serverName derives the origin-side name of a statement from its Parse body after the name,
// the statement generation (statements.go) and the settings of the session preparing it: a
// statement planned under one search_path is no other's.
func serverName(queryAndTypes []byte, gen uint64, settings string) string {
	h := sha256.New()
	h.Write(queryAndTypes)
	h.Write([]byte(settings))
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	h.Write(g[:])
	var sum [sha256.Size]byte
	return "ss_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// newStmt makes the record of a named statement from its Parse body after the name.
func (s *Session) newStmt(queryAndTypes []byte, e classify.Effect) *stmt {
	s.mu.Lock()
	key := s.settings.key
	s.mu.Unlock()
	st := &stmt{server: serverName(queryAndTypes, s.p.stmtGen.Load(), key), effect: e}
	st.parse = append(append(append(make([]byte, 0, len(st.server)+1+len(queryAndTypes)), st.server...), 0), queryAndTypes...)
	return st
}

// forward appends the origin's version of client message f to s.wbuf and the answers it draws
// to entries.
func (s *Session) forward(c *Conn, f pgwire.Frame, entries []pending) []pending {
	switch f.Type {
	case 'Q':
		s.p.m.queries.Inc()
		q, _, _ := cstring(f.Body)
		e := classify.Session(q)
		s.notePin(e)
		entries = s.useRawNames(c, e, entries)
		c.lostUnnamed(&s.mu)
		s.unnamed = s.unnamed[:0] // a simple Query drops the unnamed statement in PostgreSQL
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pQuery, effect: e})
	case 'P':
		s.unitOpen = true
		return s.parse(c, f, entries)
	case 'B':
		s.unitOpen = true
		return s.bind(c, f, entries)
	case 'D':
		s.unitOpen = true
		if len(f.Body) > 0 && f.Body[0] == 'S' {
			name, _, _ := cstring(f.Body[1:])
			entries = s.rewriteStatement(c, f, 1, name, entries)
			return append(entries, s.naming(pending{kind: pDescribeStmt}, name))
		}
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pDescribePortal})
	case 'C':
		s.unitOpen = true
		closed := pending{kind: pClose}
		if len(f.Body) > 0 && f.Body[0] == 'S' {
			if name, _, _ := cstring(f.Body[1:]); name != "" {
				// Should the origin skip the Close after an error, the statement stays (skipped).
				closed.stmt, closed.client = s.stmt(name), name
				s.dropStmt(name)
				if !s.raw {
					// Closing never fails in PostgreSQL, known name or not. The server
					// statement stays: other sessions may share it.
					closed.reply = closeComplete
					return append(entries, closed)
				}
				s.mu.Lock()
				delete(c.prepared, name)
				s.mu.Unlock()
			}
		}
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, closed)
	case 'E':
		s.unitOpen = true
		s.p.m.queries.Inc()
		var e classify.Effect
		if len(s.portals) > 0 {
			portal, _, _ := cstring(f.Body)
			e = s.portals[portal]
		}
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pExecute, effect: e})
	case 'S':
		s.unitOpen = false
		clear(s.portals)
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pSync})
	case 'H':
		s.unitOpen = true
		s.wbuf = append(s.wbuf, f.Raw...)
		return entries
	case 'F':
		s.p.m.queries.Inc()
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pQuery})
	default:
		// COPY data and anything else: the origin judges it.
		s.wbuf = append(s.wbuf, f.Raw...)
		return entries
	}
}

var (
	parseComplete = []byte{'1', 0, 0, 0, 4}
	closeComplete = []byte{'3', 0, 0, 0, 4}
	closeUnnamed  = []byte{'S', 0} // the body of a Close of the unnamed statement
)

// parse handles a Parse message: the unnamed statement goes through as it is (and is
// remembered, to re-prepare it if a later unit lands elsewhere), a named one is renamed and sent
// only to a connection that lacks it.
func (s *Session) parse(c *Conn, f pgwire.Frame, entries []pending) []pending {
	name, rest, ok := cstring(f.Body)
	if !ok {
		s.wbuf = append(s.wbuf, f.Raw...) // malformed: the origin says so
		return append(entries, pending{kind: pParse})
	}
	query, _, _ := cstring(rest)
	e := classify.Session(query)
	s.notePin(e)
	entries = s.useRawNames(c, e, entries)
	if name == "" {
		s.mu.Lock()
		held := c.unnamedBy == s && c.unnamedGen == s.unnamedGen && len(s.unnamed) > 0
		s.unnamedGen++
		c.unnamedBy, c.unnamedGen = s, s.unnamedGen
		s.mu.Unlock()
		s.unnamed = append(s.unnamed[:0], f.Body...)
		s.wbuf = append(s.wbuf, f.Raw...)
		s.unnamedEffect = e
		return append(entries, pending{kind: pParse, unnamed: true, held: held})
	}
	if old := s.stmt(name); old != nil {
		return s.parseTaken(c, name, old, f, rest, entries)
	}
	if s.raw {
		st := &stmt{server: name, effect: e}
		st.parse = append([]byte(nil), f.Body...)
		s.setStmt(name, st)
		c.markPrepared(&s.mu, name)
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pParse, prepared: name, stmt: st, client: name})
	}
	st := s.newStmt(rest, e)
	s.setStmt(name, st)
	if !c.markPrepared(&s.mu, st.server) {
		return append(entries, pending{kind: pParse, reply: parseComplete, stmt: st, client: name})
	}
	s.wbuf = pgwire.AppendFrame(s.wbuf, 'P', st.parse)
	return append(entries, pending{kind: pParse, prepared: st.server, stmt: st, client: name})
}

// parseTaken sends a Parse of a name the client already uses so that the origin answers
// 42P05 at this very message: under the existing statement's server name, which the origin
// holds (prepared first if need be). The name in the error is put back to the client's.
func (s *Session) parseTaken(c *Conn, name string, old *stmt, f pgwire.Frame, rest []byte, entries []pending) []pending {
	// c may lack it: its prepare under the client's name was skipped after an error (useRawNames).
	entries = s.ensurePrepared(c, name, entries)
	if s.raw {
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pParse})
	}
	var h int
	s.wbuf, h = pgwire.BeginFrame(s.wbuf, 'P')
	s.wbuf = append(append(s.wbuf, old.server...), 0)
	s.wbuf = append(s.wbuf, rest...)
	s.wbuf = pgwire.FinishFrame(s.wbuf, h)
	return append(entries, pending{kind: pParse, server: old.server, client: name})
}

// ensurePrepared makes sure c holds the statement a Bind or Describe names, preparing it first
// when it does not.
func (s *Session) ensurePrepared(c *Conn, name string, entries []pending) []pending {
	if name == "" {
		s.mu.Lock()
		ours := c.unnamedBy == s && c.unnamedGen == s.unnamedGen
		c.unnamedBy, c.unnamedGen = s, s.unnamedGen
		s.mu.Unlock()
		switch {
		case ours:
		case len(s.unnamed) > 0:
			s.wbuf = pgwire.AppendFrame(s.wbuf, 'P', s.unnamed)
			entries = append(entries, pending{kind: pParse, swallow: true, unnamed: true})
		default:
			// The session has no unnamed statement, but c may hold another session's (or
			// one its dial left): close it, so that the origin answers 26000 as it would
			// the client directly, instead of binding someone else's statement.
			s.wbuf = pgwire.AppendFrame(s.wbuf, 'C', closeUnnamed)
			entries = append(entries, pending{kind: pClose, swallow: true, unnamed: true})
		}
		return entries
	}
	st := s.stmt(name)
	if st == nil {
		return entries
	}
	if c.markPrepared(&s.mu, st.server) {
		s.wbuf = pgwire.AppendFrame(s.wbuf, 'P', st.parse)
		entries = append(entries, pending{kind: pParse, swallow: true, prepared: st.server})
	}
	return entries
}

// rewriteStatement forwards message f, whose statement name starts at offset at of its body,
// with the statement's server-side name. A name the session doesn't know goes through as it is,
// so the origin answers with its own error.
func (s *Session) rewriteStatement(c *Conn, f pgwire.Frame, at int, name string, entries []pending) []pending {
	entries = s.ensurePrepared(c, name, entries)
	st := s.stmt(name)
	if name == "" || st == nil {
		s.wbuf = append(s.wbuf, f.Raw...)
		return entries
	}
	var h int
	s.wbuf, h = pgwire.BeginFrame(s.wbuf, f.Type)
	s.wbuf = append(s.wbuf, f.Body[:at]...)
	s.wbuf = append(s.wbuf, st.server...)
	s.wbuf = append(s.wbuf, f.Body[at+len(name):]...)
	s.wbuf = pgwire.FinishFrame(s.wbuf, h)
	return entries
}

// bind handles a Bind message: its statement is prepared on c if needed and renamed.
func (s *Session) bind(c *Conn, f pgwire.Frame, entries []pending) []pending {
	portal, rest, ok := cstring(f.Body)
	if !ok {
		s.wbuf = append(s.wbuf, f.Raw...)
		return append(entries, pending{kind: pBind})
	}
	name, _, _ := cstring(rest)
	var e classify.Effect
	if name == "" {
		e = s.unnamedEffect
	} else if st := s.stmt(name); st != nil {
		e = st.effect
	}
	s.notePortalEffect(portal, e)
	entries = s.rewriteStatement(c, f, len(portal)+1, name, entries)
	return append(entries, s.naming(pending{kind: pBind}, name))
}

// notePortalEffect remembers what executing portal will do to the session, if anything.
func (s *Session) notePortalEffect(portal string, e classify.Effect) {
	if e.None() {
		if len(s.portals) > 0 {
			delete(s.portals, portal)
		}
		return
	}
	if s.portals == nil {
		s.portals = make(map[string]classify.Effect)
	}
	s.portals[portal] = e
}

// lostUnnamed records that a simple Query is about to run on c, which drops the unnamed
// statement in PostgreSQL.
func (c *Conn) lostUnnamed(mu *sync.Mutex) {
	mu.Lock()
	c.unnamedBy = nil
	mu.Unlock()
}

// markPrepared records that server is (about to be) prepared on c and reports whether it was
// missing. mu is the session lock that guards c while it is leased.
func (c *Conn) markPrepared(mu *sync.Mutex, server string) bool {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := c.prepared[server]; ok {
		return false
	}
	c.prepared[server] = struct{}{}
	return true
}

// Skip records the statements that client messages answered by the edge itself prepare or
// close, without sending anything: a later Bind on another unit still finds them. It is called
// by the goroutine that calls Send.
func (s *Session) Skip(frames []byte) {
	for rest := frames; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			return
		}
		rest = next
		switch f.Type {
		case 'Q':
			s.unnamed = s.unnamed[:0] // a simple Query drops the unnamed statement
			s.unnamedGen++            // and no connection holds the session's
		case 'P':
			name, rest, ok := cstring(f.Body)
			if !ok {
				continue
			}
			query, _, _ := cstring(rest)
			e := classify.Session(query)
			if name == "" {
				s.unnamed = append(s.unnamed[:0], f.Body...)
				s.unnamedGen++ // no connection holds this one yet
				s.unnamedEffect = e
				continue
			}
			s.setStmt(name, s.newStmt(rest, e))
		case 'C':
			if len(f.Body) > 0 && f.Body[0] == 'S' {
				if name, _, _ := cstring(f.Body[1:]); name != "" {
					s.dropStmt(name)
				}
			}
		}
	}
}

package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// syncSettings queues the query that gives c this session's settings, when c holds others.
func (s *Session) syncSettings(c *Conn, entries []pending) []pending {
	s.mu.Lock()
	key := s.settings.key
	same := c.state == key
	c.state = key
	s.mu.Unlock()
	if same {
		return entries
	}
	q := key
	if q == "" {
		q = "RESET ALL"
	}
	c.lostUnnamed(&s.mu)
	var h int
	s.wbuf, h = pgwire.BeginFrame(s.wbuf, 'Q')
	s.wbuf = append(append(s.wbuf, q...), 0)
	s.wbuf = pgwire.FinishFrame(s.wbuf, h)
	return append(entries, pending{kind: pSetup, swallow: true, state: key, lead: true})
}

// notePin pins the session to its connection when e needs one connection for good.
func (s *Session) notePin(e classify.Effect) {
	if e.Pin == "" {
		return
	}
	s.mu.Lock()
	first := s.pinned == ""
	if first {
		s.pinned = e.Pin
	}
	s.mu.Unlock()
	if first {
		s.p.m.pin(e.Pin)
		s.log.Debug("session pinned to its origin connection", "reason", e.Pin)
	}
}

// Recv appends the next messages for the client to dst. It blocks until there is something to
// send, returning as soon as the origin has nothing more buffered so that answers reach the
// client without delay.
func (s *Session) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := len(dst)
	for {
		dst = s.emitReplies(dst)
		c := s.conn
		if n := len(dst) - start; n > 0 && (c == nil || c.r.Buffered() == 0 || n >= flushAt) {
			return dst, nil
		}
		if len(dst) == start && s.popped >= s.due && s.pinned == "" {
			return dst, nil // what was due was all swallowed (a settings query)
		}
		if s.closed {
			return dst, link.ErrClosed
		}
		// Read the origin only while an answer is due, or while pinned (notifications).
		if c == nil || (s.queued() == 0 && s.pinned == "") {
			s.wake.Wait()
			continue
		}
		s.reading = true
		s.mu.Unlock()
		typ, body, err := c.r.ReadMessage()
		s.mu.Lock()
		s.reading = false
		if err != nil {
			if s.rs.armed && s.resend(ctx, c) {
				continue
			}

			dst, _ = s.unhold(c, dst) // the client gets what the origin said
			return dst, s.readFailed(c, err)
		}
		if s.rs.armed && s.holdBack(typ, body) {
			continue
		}

		if dst, err = s.unhold(c, dst); err != nil {
			return dst, err
		}
		if dst, err = s.handle(c, typ, body, dst); err != nil {
			return dst, err
		}
	}
}

// Pending reports whether answers are due that the client needs no further message for: the
// caller should Recv them before reading the client again. It is false while the origin waits
// for COPY data.
func (s *Session) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.popped < s.due && !s.copyIn
}

// Pinned reports whether the session holds its origin connection for good; the origin may then
// send notifications at any time, so the caller should Recv continuously.
func (s *Session) Pinned() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pinned != ""
}

// emitReplies moves made-up answers at the head of the queue to dst. s.mu is held.
func (s *Session) emitReplies(dst []byte) []byte {
	for s.queued() > 0 && s.head().reply != nil {
		dst = append(dst, s.head().reply...)
		s.pop()
	}
	return dst
}

// The queue is a slice read from qhead on; it goes back to the start of its array whenever it
// empties, so a session in steady state allocates nothing for it.
func (s *Session) queued() int    { return len(s.queue) - s.qhead }
func (s *Session) head() *pending { return &s.queue[s.qhead] }

func (s *Session) pop() {
	s.queue[s.qhead] = pending{}
	s.qhead++
	s.popped++
	if s.qhead == len(s.queue) {
		s.queue, s.qhead = s.queue[:0], 0
	}
}

// readFailed handles a failed read of the origin: the end of the session, or a broken origin.
// s.mu is held.
// A resend that failed has already let c go (s.conn is no longer c). s.mu is held.
func (s *Session) readFailed(c *Conn, err error) error {
	ours := s.conn == c
	if s.closed {
		// Close interrupted the read with a deadline: finish what Close started.
		if ours {
			s.finish(c, errors.Is(err, os.ErrDeadlineExceeded))
		}
		return link.ErrClosed
	}
	if ours {
		c.broken = true
		s.conn = nil
		s.p.Release(c)
	}
	clear(s.queue)
	s.queue, s.qhead = s.queue[:0], 0
	if s.saidFatal {
		// The client has the origin's own FATAL, as a direct connection would have had it.
		s.log.Info("the origin ended the session's connection", "err", err)
		return fmt.Errorf("%w: %w", link.ErrOriginEnded, err)
	}
	s.log.Warn("origin connection lost", "err", err)
	return fmt.Errorf("%w: %w", link.ErrOriginLost, err)
}

// handle passes one origin message on to the client, or not, and matches it against the queue.
// s.mu is held.
func (s *Session) handle(c *Conn, typ byte, body, dst []byte) ([]byte, error) {
	fatal := typ == 'E' && isFatal(body)
	if fatal {
		s.saidFatal = true
	}
	if s.queued() == 0 {
		// Only asynchronous messages arrive unasked: notifications, notices, parameter changes,
		// or a FATAL error before the origin closes the connection.
		return pgwire.AppendFrame(dst, typ, body), nil
	}
	head := s.head()
	if head.kind == pSetup && !fatal { // a FATAL ends the connection: the client gets it as sent
		return s.handleSetup(c, head, typ, body, dst)
	}
	forward := true
	switch typ {
	case 'S': // ParameterStatus
		if v, ok := s.resetTo(head, body); ok {
			return appendParameterStatus(dst, "application_name", v), nil
		}
	case 'G': // CopyInResponse: now the client speaks, unless it sent its data already
		s.copyIn = !head.copyDone
	case '1', '3': // ParseComplete, CloseComplete
		forward = !head.swallow
		s.pop()
	case '2': // BindComplete
		s.pop()
	case 'T', 'n': // RowDescription, NoData
		if head.kind == pDescribeStmt || head.kind == pDescribePortal {
			s.pop()
		}
	case 'C': // CommandComplete
		if ddlTag(body) {
			s.p.stmtGen.Add(1) // shared statements planned before it may be stale
		}
		s.commandComplete(c, head, body)
		if head.kind == pExecute {
			s.pop()
		}
	case 'I', 's': // EmptyQueryResponse, PortalSuspended
		if head.kind == pExecute {
			s.pop()
		}
	case 'E':
		if staleStatement(body) {
			s.p.stmtGen.Add(1)
		}
		dst = renameError(dst, body, head.server, head.client)
		forward = false
		s.errorResponse(c)
	case 'Z':
		if len(body) > 0 {
			s.txStatus = body[0]
		}
		s.readyForQuery(c, head)
		s.pop()
		// body lives in c's read buffer: copy it out before c can go to another session.
		dst = pgwire.AppendFrame(dst, typ, body)
		s.maybeRelease()
		return dst, nil
	}
	if forward {
		dst = pgwire.AppendFrame(dst, typ, body)
	}
	return dst, nil
}

// commandComplete applies what a finished statement did to the session. s.mu is held.
func (s *Session) commandComplete(c *Conn, head *pending, tag []byte) {
	switch string(tag) {
	case "COMMIT\x00":
		s.commitSettings(c)
	case "ROLLBACK\x00":
		s.settings.Drop()
	}
	if head.kind == pExecute && !head.effect.None() {
		s.stage(c, head.effect)
	}
}

// errorResponse handles an error: a failed Query still ends with ReadyForQuery; in the
// extended protocol the origin skips everything up to the next Sync, and so do the answers the
// session expected. s.mu is held.
func (s *Session) errorResponse(c *Conn) {
	if s.head().kind == pQuery {
		s.head().failed = true
		return
	}
	if h := s.head(); h.kind == pParse && h.unnamed {
		s.unnamed = s.unnamed[:0] // a failed Parse of the unnamed statement leaves none
	}
	for s.queued() > 0 && s.head().kind != pSync {
		s.skipped(c, s.head())
		s.pop()
	}
	// No Sync sent yet: the origin ignores what comes until there is one.
	s.originSkip = s.queued() == 0
}

// skipped undoes what a message the origin failed or skipped would have done. s.mu is held.
func (s *Session) skipped(c *Conn, p *pending) {
	if p.kind == pClose {
		s.keepClosed(c, p)
		return
	}
	if p.prepared != "" {
		delete(c.prepared, p.prepared) // its Parse failed or never ran
	}
	switch {
	case !p.unnamed:
	case p.swallow:
		// The session's own Parse or Close of the unnamed statement, added for c's sake,
		// did not run: whatever c holds as its unnamed statement is not the session's.
		if c.unnamedBy == s {
			c.unnamedBy = nil
		}
	case !p.held:
		// The client's Parse did not run, and c held no unnamed statement of the session's
		// before it: as far as the session knows, there is none (a Bind of it gets 26000).
		if c.unnamedBy == s {
			c.unnamedBy = nil
		}
		s.unnamed = s.unnamed[:0]
	}
	s.forgetFailed(p)
}

// dropSkipped takes out of a batch's entries those of the messages the origin skips after an
// error that arrived while the batch was built: all of them, or those before its Sync. It
// returns the entries left and how many went. s.mu is held.
func (s *Session) dropSkipped(c *Conn, entries []pending, synced bool) ([]pending, int) {
	i := 0
	for i < len(entries) && entries[i].kind != pSync {
		s.skipped(c, &entries[i])
		i++
	}
	if !synced {
		i = len(entries)
	}
	return append(entries[:0], entries[i:]...), i
}

// readyForQuery ends a Query or a Sync. s.mu is held.
func (s *Session) readyForQuery(c *Conn, head *pending) {
	if head.kind == pQuery && !head.failed && !head.effect.None() {
		s.stage(c, head.effect)
	}
	if s.txStatus == 'I' {
		s.commitSettings(c)
	}
}

// stage records a successful statement's effect: prepared statements go at once, settings wait
// for the end of the transaction. s.mu is held.
func (s *Session) stage(c *Conn, e classify.Effect) {
	if e.CatalogChange {
		s.p.catalogChanged()
	}
	if e.DropsPrepared {
		clear(c.prepared)
		c.unnamedBy = nil
		clear(s.stmts)
	}
	s.settings.Stage(e.Settings...)
}

// commitSettings makes the transaction's setting changes part of the session. The connection
// ran them, so it holds the new state. s.mu is held.
func (s *Session) commitSettings(c *Conn) {
	if !s.settings.Staged() {
		return
	}
	resetAll := s.settings.Commit()
	s.settings.rekey()
	c.state = s.settings.heldAfterCommit(resetAll)
}

// maybeRelease gives the connection back to the pool when the session holds it for nothing:
// no answer due, no unit or transaction open, not pinned. s.mu is held.
func (s *Session) maybeRelease() {
	c := s.conn
	if c == nil || s.sending || s.reading || s.open || s.queued() > 0 || s.txStatus != 'I' || s.pinned != "" || s.closed {
		return
	}
	s.conn = nil
	s.p.Release(c)
}

// Cancel cancels the query running for this session, if any. The lease is held until the
// origin has taken the request, so the cancel can't land on another client's query.
func (s *Session) Cancel(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if s.sending {
		// Send has not written its unit yet (it may wait for a connection): a cancel now would
		// find the origin idle and be lost; Send sends it once it has written.
		s.cancelPending = true
		return nil
	}
	if c == nil || s.queued() == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.cancel(ctx)
}

// Close ends the session. A connection it leaves clean goes back to the pool; one with a
// transaction, a unit or pinned state open is closed.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.wake.Broadcast()
	if s.pinned != "" {
		s.p.m.pinned.Dec()
	}
	c := s.conn
	if c == nil {
		return nil
	}
	if s.reading {
		// Recv is blocked on c: wake it; it finishes the release.
		c.nc.SetReadDeadline(time.Now())
		return nil
	}
	s.finish(c, true)
	return nil
}

// finish hands c back after the session closed. s.mu is held.
func (s *Session) finish(c *Conn, clean bool) {
	s.conn = nil
	if !clean || s.sending || s.open || s.queued() > 0 || s.txStatus != 'I' || s.pinned != "" || c.r.Buffered() > 0 {
		// Mid-unit, mid-transaction or holding session state: nobody else may inherit it.
		c.retire = true
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	s.p.Release(c)
}

// ErrSettingsRefused means the origin refused a session's startup settings (an unknown
// parameter, a bad value): the client has had the origin's error, as the FATAL PostgreSQL
// sends at startup, and the session is over.
var ErrSettingsRefused = fmt.Errorf("%w: the origin refused the session's settings", link.ErrTerminated)

// handleSetup swallows the answers to the session's settings query. When it failed, the client
// gets the origin's first error as a FATAL, as PostgreSQL refuses such settings at startup,
// and the session ends. s.mu is held.
func (s *Session) handleSetup(c *Conn, head *pending, typ byte, body, dst []byte) ([]byte, error) {
	switch typ {
	case 'E':
		if !head.failed {
			head.failed = true
			head.refusal = pgwire.AppendFrame(nil, 'E', body)
		}
	case 'Z':
		failed, errMsg := head.failed, head.refusal
		s.pop()
		if failed {
			c.broken = true
			return append(dst, fatalError(errMsg)...), ErrSettingsRefused
		}
	}
	return dst, nil
}

// fatalError returns an ErrorResponse frame with its severity made FATAL.
func fatalError(frame []byte) []byte {
	if len(frame) < 5 {
		return frame
	}
	out, h := pgwire.BeginFrame(nil, 'E')
	for b := frame[5:]; len(b) > 1 && b[0] != 0; {
		i := bytes.IndexByte(b[1:], 0)
		if i < 0 {
			break
		}
		out = append(out, b[0])
		if b[0] == 'S' || b[0] == 'V' {
			out = append(out, "FATAL"...)
		} else {
			out = append(out, b[1:1+i]...)
		}
		out = append(out, 0)
		b = b[2+i:]
	}
	return pgwire.FinishFrame(append(out, 0), h)
}

// resetTo reports the value a client's RESET of application_name (or RESET ALL) goes back to
// on a direct connection, its startup value, when the origin connection reports its own
// instead: the ParameterStatus the client gets must be its own. s.mu is held.
func (s *Session) resetTo(head *pending, body []byte) (string, bool) {
	if !bytes.HasPrefix(body, []byte("application_name\x00")) {
		return "", false
	}
	v, ok := s.settings.Base["application_name"]
	if !ok {
		return "", false
	}
	for _, set := range head.effect.Settings {
		if set.All || set.Reset && set.Name == "application_name" {
			return v, true
		}
	}
	return "", false
}

// appendParameterStatus appends a ParameterStatus message.
func appendParameterStatus(dst []byte, name, value string) []byte {
	dst, h := pgwire.BeginFrame(dst, 'S')
	dst = append(append(dst, name...), 0)
	dst = append(append(dst, value...), 0)
	return pgwire.FinishFrame(dst, h)
}

// Caps: a pool session is the pool end itself, in the edge's process: no other edge to tell,
// no cache of its own, no lease.
func (s *Session) Caps() link.Caps { return link.Caps{} }

package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/slipstream-proxy/slipstream/classify"
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
	return append(entries, pending{kind: pSetup, swallow: true, state: key})
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
		if s.closed {
			return dst, ErrClosed
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
		return ErrClosed
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
		return fmt.Errorf("%w: %w", ErrOriginEnded, err)
	}
	s.log.Warn("origin connection lost", "err", err)
	return fmt.Errorf("%w: %w", ErrOriginLost, err)
}

// handle passes one origin message on to the client, or not, and matches it against the queue.
// s.mu is held.
func (s *Session) handle(c *Conn, typ byte, body, dst []byte) ([]byte, error) {
	if typ == 'E' && isFatal(body) {
		s.saidFatal = true
	}
	if s.queued() == 0 {
		// Only asynchronous messages arrive unasked: notifications, notices, parameter changes,
		// or a FATAL error before the origin closes the connection.
		return pgwire.AppendFrame(dst, typ, body), nil
	}
	head := s.head()
	if head.kind == pSetup {
		switch typ {
		case 'E':
			head.failed = true
		case 'Z':
			failed := head.failed
			s.pop()
			if failed {
				c.broken = true
				return dst, fmt.Errorf("%w: restoring the session's settings failed", ErrOriginLost)
			}
		}
		return dst, nil
	}
	forward := true
	switch typ {
	case 'G': // CopyInResponse: now the client speaks, unless it sent its data already
		s.copyIn = !head.copyDone
	case '1': // ParseComplete
		forward = !head.swallow
		s.pop()
	case '2', '3': // BindComplete, CloseComplete
		s.pop()
	case 'T', 'n': // RowDescription, NoData
		if head.kind == pDescribeStmt || head.kind == pDescribePortal {
			s.pop()
		}
	case 'C': // CommandComplete
		s.commandComplete(c, head, body)
		if head.kind == pExecute {
			s.pop()
		}
	case 'I', 's': // EmptyQueryResponse, PortalSuspended
		if head.kind == pExecute {
			s.pop()
		}
	case 'E':
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
		s.txSettings = s.txSettings[:0]
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
	for s.queued() > 0 && s.head().kind != pSync {
		if p := s.head().prepared; p != "" {
			delete(c.prepared, p) // its Parse failed or never ran
		}
		s.pop()
	}
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
	s.txSettings = append(s.txSettings, e.Settings...)
}

// commitSettings makes the transaction's setting changes part of the session. The connection
// ran them, so it holds the new state. s.mu is held.
func (s *Session) commitSettings(c *Conn) {
	if len(s.txSettings) == 0 {
		return
	}
	for _, set := range s.txSettings {
		s.settings.apply(set)
		if set.All && len(s.settings.base) > 0 {
			// RESET ALL went back to the connection's startup values, not the client's.
			s.settings.rekey()
			c.state = ""
			s.txSettings = s.txSettings[:0]
			return
		}
	}
	s.settings.rekey()
	c.state = s.settings.key
	s.txSettings = s.txSettings[:0]
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
	if c == nil || (s.queued() == 0 && !s.sending) {
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

package proxy

import (
	"context"
)

// prepareSend does what goes before the unit is sent: a BEGIN held back is sent alone when it
// can't go with this unit, the session's writes are reported with the batch that may make
// them visible, and the pool end's cache is hinted that it may keep the answer. It reports
// false when the session is over.
func (sess *session) prepareSend(ctx context.Context, u *unit) bool {
	if sess.begin.held != nil && !mergeable(u.frames) && !sess.sendBeginAlone(ctx) {
		return false
	}
	if sess.cache != nil {
		sess.reportWrites(&u.p) // after a BEGIN sent alone: it goes with the batch that writes
	}
	if u.hinting {
		if sess.begin.held == nil { // a BEGIN's answers in front would not be the unit's
			u.hinter.HintCacheable(u.p.key, u.p.tables, u.p.maxAge, sess.caching.StaleWhileRevalidate)
		}
		u.hc = hintCount{pending: true, status: u.p.status}
	}
	return true
}

// forward sends the unit and passes its answers to the client as they come. A read outside a
// transaction may be sent again, once, over another pool, when the tunnel fails under it before
// the client has any of its answer (DESIGN.md invariant 2: nothing else). It reports false
// when the session is over.
func (sess *session) forward(ctx context.Context, u *unit, buf []byte) ([]byte, bool) {
	u.retry = sess.retryable(&u.p)
	for {
		err := sess.stream.Send(ctx, sess.withBegin(u.frames))
		sent := err == nil
		if sent {
			var clientOK bool
			if buf, clientOK, err = sess.receive(ctx, u, buf); !clientOK {
				return buf, false
			}
			if err == nil {
				return buf, true
			}
		}
		if u.retry && sess.retryElsewhere(ctx, err) {
			u.retry = false
			continue
		}
		if sent {
			sess.failed(err)
		} else {
			sess.sendFailed(err)
		}
		return buf, false
	}
}

// receive reads the stream while answers are due and passes each chunk through the sinks. It
// returns the stream's error, and clientOK false when the client's connection failed.
func (sess *session) receive(ctx context.Context, u *unit, buf []byte) (_ []byte, clientOK bool, _ error) {
	for sess.stream.Pending() {
		var err error
		buf, err = sess.stream.Recv(ctx, buf[:0])
		buf = sess.begin.filter(buf)
		u.received = true
		if len(buf) > 0 && !sess.sink(u, buf) {
			return buf, false, nil
		}
		if err != nil {
			return buf, true, err
		}
	}
	return buf, true, nil
}

package proxy

import "time"

// settle records the transaction status the unit left: the answer's last ReadyForQuery, or the
// error of a BEGIN sent ahead of it, which the client gets instead of the unit's answers. It
// reports false when the client's connection failed.
func (sess *session) settle(u *unit, buf []byte) bool {
	if answer := sess.begin.failed(); answer != nil {
		sess.begin.tx = answer[len(answer)-1]
		_, err := sess.nc.Write(answer)
		return err == nil
	}
	if u.received {
		sess.begin.noteStatus(buf)
	} else {
		sess.begin.tx = 0 // a unit left open: its status is unknown until it ends
	}
	return true
}

// keep stores the captured answer of a unit that led its key's flight, when it ended outside
// a transaction, no longer than the pool's cache says its copy stays fresh.
func (sess *session) keep(u *unit) {
	if u.capturing && u.status == 'I' {
		maxAge := u.p.maxAge
		if fresh, ok := sess.poolFresh(u.hinter, u.hinting); ok {
			maxAge = min(maxAge, fresh) // read from the origin that much earlier
		}
		sess.s.cfg.Cache.Put(sess.db, u.p.key, sess.capture, u.snap, maxAge, sess.caching.StaleWhileRevalidate, time.Now())
		u.landed = sess.capture
	}
	if cap(sess.capture) > 1<<20 {
		sess.capture = nil
	}
}

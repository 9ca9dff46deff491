package proxy

import (
	"context"

	"github.com/slipstream-proxy/slipstream/cache"
)

// lookup plans a unit of a cached session and looks its key up: it reports answered when the
// cache gave the client its answer (ok: the session goes on). Otherwise u says whether the
// unit leads a flight for its key (its answer will be kept) and whether the pool side is to be
// hinted that it may keep it too.
func (sess *session) lookup(ctx context.Context, u *unit) (answered, ok bool) {
	u.p = sess.plan(u.frames, sess.stream.Pinned())
	p := &u.p
	sess.cache.written = append(sess.cache.written, p.writes...)
	sess.cache.writeAll = sess.cache.writeAll || p.writeAll
	if p.status == cache.Miss {
		l := lookupCache(sess.s.cfg.Cache, sess.stream, sess.db, p.key, ctx.Done(), func() ([]string, bool) {
			ok := sess.admit(p)
			return p.tables, ok
		})
		if l.resp != nil {
			if l.refresh {
				sess.refresh(ctx, u.frames, *p)
			}
			return true, sess.answerFromCache(u.frames, p, l.resp, l.status)
		}
		if l.flight != nil {
			u.flight, u.capturing, u.snap = l.flight, true, l.snap
			sess.capture = sess.capture[:0]
		}
		u.hinting = u.hinter != nil && l.admitted
	}
	if !u.hinting {
		sess.cacheStatus(p.status)
	}
	return false, true
}

// answerFromCache writes a cached answer and tells the pool side about the statements the
// batch prepared or closed.
func (sess *session) answerFromCache(frames []byte, p *unitPlan, resp []byte, st cache.Status) bool {
	if p.skip {
		sess.stream.Skip(frames)
	}
	sess.cacheStatus(st)
	_, err := sess.nc.Write(resp)
	return err == nil
}

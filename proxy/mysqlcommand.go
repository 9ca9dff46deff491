package proxy

import (
	"context"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// The query path of a MySQL session whose database is cached: mysqlCommand takes one command
// packet through these steps, in the order they run:
//
//	lookup      from the cache when it can (the answer is noted, the command kept to replay)
//	replayHit   a hit's command is run at the origin before one that reads what it left
//	note        what the command writes, sets or changes in the session, from classify
//	capture     whether its answer is copied, to be kept (a flight led, or a stale refresh)
//	report      the writes to the pool end's other edges; the pool cache's hint
//	forward     send, receive the answer (sent again over another pool when allowed)
//	keep        the captured answer stored, no longer than the pool's copy is fresh
//
// mysqlUnit holds what the steps pass each other.
type mysqlUnit struct {
	raw     []byte
	p       myPlan
	l       cacheLookup
	snap    cache.Snapshot // the tables' generations before the command was sent
	landed  []byte         // what a led flight lands with: the answer kept, or nothing
	hinter  link.PoolCache // the pool end's cache, if the stream's pool end has one
	hinting bool           // the pool side is told it may keep the answer

	// What ends with the command (endCommand): the hint's count, the flight it leads, the
	// refresh of a stale answer it makes.
	counting, landing, refreshing bool
}

// mysqlCommand runs one command of a session whose database is cached: from the cache when
// it can, else through the pool side, keeping a copy of a cacheable answer and invalidating
// what a write wrote before its answer reaches the client.
func (sess *mysqlSession) mysqlCommand(ctx context.Context, raw, buf []byte) ([]byte, bool) {
	var u mysqlUnit // on the stack: a hit allocates nothing for it
	u.raw, u.p, u.hinter = raw, sess.planMySQL(raw), sess.stream.Caps().PoolCache
	if u.p.status == cache.Miss {
		if answered, ok := sess.myLookup(ctx, &u); answered {
			return buf, ok
		}
	}
	defer sess.endCommand(&u)
	if len(sess.mc.replay) > 0 && !sess.replayHit(ctx, &u.p) {
		return buf, false
	}
	sess.noteCommand(&u)
	sess.startCapture(&u)
	sess.reportAndHint(&u)
	buf, ok := sess.forwardMySQL(ctx, &u, buf)
	if !ok {
		return buf, false
	}
	sess.keepMySQL(&u)
	return buf, true
}

// endCommand does what ends with the command, whichever way it ended: the hint is counted,
// then the flight it led lands (with the answer kept, or nothing, releasing those who wait),
// or the refresh it made ends.
func (sess *mysqlSession) endCommand(u *mysqlUnit) {
	if u.counting {
		sess.mc.hc.count(sess.s.m, sess.mc.label, u.hinter)
	}
	switch {
	case u.landing:
		sess.s.cfg.Cache.Land(u.p.key, u.l.flight, u.landed, u.snap)
	case u.refreshing:
		sess.s.cfg.Cache.EndRefresh(u.p.key)
	}
}

// myLookup looks the command's key up: it reports answered when the cache gave the client its
// answer (ok: the session goes on); a stale answer this session refreshes is not answered.
func (sess *mysqlSession) myLookup(ctx context.Context, u *mysqlUnit) (answered, ok bool) {
	mc, p := sess.mc, &u.p
	u.l = lookupCache(sess.s.cfg.Cache, sess.stream, mc.ns, p.key, ctx.Done(), func() ([]string, bool) {
		cls := sess.classOf(p)
		if !cls.cacheable || systemSchema(cls.st.Reads, sess.state.DB) {
			return nil, false
		}
		// Asked at every admit, which only misses reach, so that a read of a view made a
		// moment ago is kept under the view's tables too.
		prof, err := sess.s.cfg.Transport.Profile(ctx, sess.db.origin())
		if err != nil {
			return nil, false
		}
		p.tables = withRelated(cls.st.Reads, prof.Related)
		return p.tables, true
	})
	l := &u.l
	if l.resp == nil || l.refresh {
		return false, true
	}
	sess.noteCacheStatus(l.status)
	if l.status == cache.Hit {
		mc.hits.Inc()
	} else {
		sess.s.m.cacheStatus(mc.label, l.status)
	}
	if _, err := sess.nc.Write(l.resp); err != nil {
		return true, false
	}
	sess.noteAnswer(l.resp)
	mc.replay, mc.replayStmt, mc.replayTypesAt = append(mc.replay[:0], u.raw...), p.stmt, p.typesAt
	return true, true
}

// noteCommand notes what the command writes, and what it changes in the session (variables it
// sets that the cache key can follow, or anything else, which ends caching for the session),
// and counts its cache status.
func (sess *mysqlSession) noteCommand(u *mysqlUnit) {
	mc, p := sess.mc, &u.p
	if p.query || p.sql != "" {
		cls := sess.classOf(p)
		mc.written = append(mc.written, cls.writes...)
		mc.writeAll = mc.writeAll || cls.writeAll
		if sess.state.Note(cls.eff, cls.eff.Vars && followableVars(cls.st)) {
			p.vars = p.sql
		}
		if p.status == cache.Miss && !cls.cacheable {
			p.status = cls.reason
		}
	}
	u.hinting = u.hinter != nil && u.l.admitted
	if p.query {
		sess.noteCacheStatus(p.status)
	}
	if p.query && !u.hinting {
		sess.s.m.cacheStatus(mc.label, p.status)
	}
	p.frames = withTypes(p.frames, p.stmt, p.typesAt)
}

// startCapture readies the answer's copy: kept when the command leads its key's flight, or
// refreshes a stale answer (asking the origin itself while others are served the stale one);
// endCommand lands the one or ends the other.
func (sess *mysqlSession) startCapture(u *mysqlUnit) {
	mc := sess.mc
	mc.answered, mc.prepared, mc.capturing, mc.capture = false, mc.prepared[:0], false, mc.capture[:0]
	u.snap = u.l.snap
	switch {
	case u.l.flight != nil:
		mc.capturing, u.landing = true, true
	case u.l.refresh:
		mc.capturing, u.refreshing = true, true
		u.snap = sess.s.cfg.Cache.Snapshot(mc.ns, u.p.tables)
	}
}

// reportAndHint tells the pool end, over the QUIC tunnel, what the session wrote, so that the
// pool's other edges invalidate it before the answer leaves it: every command of a transaction
// reports them, which costs a fan-out per statement but never misses the one that makes them
// visible. And it hints the pool's cache that it may answer the command for every edge
// (poolhint.go), counted once the answer says where it came from.
func (sess *mysqlSession) reportAndHint(u *mysqlUnit) {
	mc := sess.mc
	if r := sess.stream.Caps().Writes; r != nil && (len(mc.written) > 0 || mc.writeAll) {
		r.ReportWrites(mc.written, mc.writeAll)
	}
	if u.hinting {
		u.hinter.HintCacheable(u.p.key, u.p.tables, u.p.maxAge, mc.caching.StaleWhileRevalidate)
		mc.hc = hintCount{pending: true, status: u.p.status}
		u.counting = true
	}
}

// forwardMySQL sends the command and passes its answer on; a read the pool end lost may go to
// another pool (mysqlRetryable). What the session wrote is invalidated whatever happens: a
// write whose answer never came may have committed. It reports false when the session is over.
func (sess *mysqlSession) forwardMySQL(ctx context.Context, u *mysqlUnit, buf []byte) ([]byte, bool) {
	var resend []byte // the command, when it may go to another pool if this one is lost
	if sess.mysqlRetryable(&u.p) {
		resend = u.p.frames
	}
	sess.routeReplica(&u.p)
	sess.cr.watch()
	if err := sess.stream.Send(ctx, u.p.frames); err != nil && (resend == nil || !sess.mysqlRetryElsewhere(ctx, err, resend)) {
		sess.mysqlInvalidate()
		return buf, sess.sendFailed(err)
	}
	buf, ok := sess.answerOr(ctx, buf, resend)
	sess.mysqlInvalidate()
	return buf, ok
}

// keepMySQL notes a command the pool's cache answered (to replay, as after a hit here), the
// command's effects on the session, and stores the captured answer when it may be kept, no
// longer than the pool's copy stays fresh.
func (sess *mysqlSession) keepMySQL(u *mysqlUnit) {
	mc := sess.mc
	fresh, fromPool := time.Duration(0), false
	if u.hinting {
		fresh, fromPool = u.hinter.FromPoolCache()
	}
	if fromPool {
		// The origin did not run it either: replay it before a statement that reads what it
		// left, as after a hit here.
		mc.replay, mc.replayStmt, mc.replayTypesAt = append(mc.replay[:0], u.raw...), u.p.stmt, u.p.typesAt
	}
	sess.afterMySQL(&u.p)
	if mc.capturing && sess.cacheableAnswer(mc.capture) {
		maxAge := u.p.maxAge
		if fromPool {
			maxAge = min(maxAge, fresh) // read from the origin that much earlier
		}
		sess.s.cfg.Cache.Put(mc.ns, u.p.key, mc.capture, u.snap, maxAge, mc.caching.StaleWhileRevalidate, time.Now())
		u.landed = mc.capture
	}
	if cap(mc.capture) > 1<<20 {
		mc.capture = nil
	}
}

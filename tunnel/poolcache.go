package tunnel

import (
	"encoding/binary"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// The pool end's cache: a second layer, shared by every edge of the pool, under the edges'
// own. An edge hints a unit it keeps in its cache (frameHint: its key, the tables it reads, its
// max age); the pool end answers the unit from its cache when it can, without asking the
// origin, and otherwise keeps the origin's answer when it is one an edge would keep. The keys
// and tables are the edge's: the tunnel still reads no SQL, and trusts its edges (mutual TLS,
// one deployment). Writes reported by any edge invalidate this cache before the write's last
// answer leaves the pool end (tellWrites), before the other edges are told.

// maxCachedAnswer bounds an answer the pool end keeps, as Caching.MaxResultBytes does the
// edge's by default.
const maxCachedAnswer = 50 << 20

// Metrics are the pool end's Prometheus metrics.
type Metrics struct {
	cacheQ *prometheus.CounterVec
}

// NewMetrics creates the pool end's metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{cacheQ: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipstream_pool_cache_queries_total",
		Help: "Units the edges hinted as cacheable, by the pool cache's status: hit (answered without the origin), coalesced (answered with what an identical unit in flight got from the origin) or miss.",
	}, []string{"db", "status"})}
	if reg != nil {
		reg.MustRegister(m.cacheQ)
	}
	return m
}

// fromCache answers a hinted batch b from the pool end's cache when it holds a fresh answer:
// the session is told what it skipped (statements the batch prepares or closes), and the
// answer goes out as one data frame flagged as cached, which ends the batch; the frame's
// answers follow a uint32, the milliseconds the answer stays fresh, so that the edge keeps it
// no longer than the origin's answer may be served. It reports
// whether it answered, and a send's failure.
func (ss *serverSession) fromCache(h *hint, b, buf []byte) ([]byte, bool, error) {
	s := ss.c.s
	resp, fresh, st := s.cfg.Cache.Lookup(ss.db, h.key, time.Now())
	if st != cache.Hit {
		return buf, false, nil
	}
	s.m.cacheQ.WithLabelValues(ss.db, string(cache.Hit)).Inc()
	buf, err := ss.sendCached(b, resp, fresh, buf)
	return buf, true, err
}

// statusCoalesced counts a hinted unit answered with the answer another session's identical
// unit, in flight at the same time, got from the origin.
const statusCoalesced = "coalesced"

// fromFlight answers a hinted batch b that missed with the answer of the identical unit
// another session is asking the origin for (cache.Join), when its answer is one an edge would
// keep and no table it read was written since: concurrent identical misses of all the edges
// send one query to the origin. A session that leads the flight captures its answer, and lands
// it in finish (or nothing, dropCapture). It reports whether it answered, and a send's
// failure.
func (ss *serverSession) fromFlight(h *hint, b, buf []byte, done <-chan struct{}) ([]byte, bool, error) {
	s := ss.c.s
	c := s.cfg.Cache
	f, leader := c.Join(h.key)
	if leader {
		ss.capture.start(c, ss.db, h) // before the unit is sent: see finish
		ss.capture.flight = f
		return buf, false, nil
	}
	resp := c.Wait(ss.db, f, done)
	if resp == nil {
		return buf, false, nil // the leader got nothing to share: ask the origin
	}
	s.m.cacheQ.WithLabelValues(ss.db, statusCoalesced).Inc()
	buf, err := ss.sendCached(b, resp, h.maxAge, buf)
	return buf, true, err
}

// sendCached answers the batch b with resp, answered without the origin: the session is told
// what it skipped (statements the batch prepares or closes), and the answer goes out as one
// data frame flagged as cached, which ends the batch; the frame's answers follow a uint32, the
// milliseconds the answer stays fresh.
func (ss *serverSession) sendCached(b, resp []byte, fresh time.Duration, buf []byte) ([]byte, error) {
	ss.ps.Skip(b)
	buf = append(buf[:0], make([]byte, dataHead)...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(max(fresh/time.Millisecond, 1)))
	buf = append(buf, resp...)
	return buf, ss.sendFlags(buf, flagCached)
}

// capture is the answer of a hinted unit the pool end asks the origin for, kept if it may be.
type capture struct {
	on     bool
	h      hint
	snap   cache.Snapshot // of the unit's tables, taken before the unit was sent
	resp   []byte
	flight *cache.Flight // led by this session: other sessions wait for its answer
}

// start begins capturing the answer of the unit hinted by h, about to be sent.
func (cp *capture) start(c *cache.Cache, db string, h *hint) {
	cp.on, cp.resp = true, cp.resp[:0]
	cp.h.key, cp.h.tables, cp.h.maxAge, cp.h.swr = append(cp.h.key[:0], h.key...), h.tables, h.maxAge, h.swr
	cp.snap = c.Snapshot(db, h.tables)
}

// add appends a chunk of the answer, giving up past maxCachedAnswer.
func (cp *capture) add(chunk []byte) {
	if !cp.on {
		return
	}
	if len(cp.resp)+len(chunk) > maxCachedAnswer {
		cp.on, cp.resp = false, nil
		return
	}
	cp.resp = append(cp.resp, chunk...)
}

// finish stores the captured answer when the whole of it came, it is one an edge would keep
// (no error, outside a transaction), and no table it read was written since it was sent.
func (ss *serverSession) finish() {
	cp := &ss.capture
	if !cp.on {
		ss.dropCapture()
		return
	}
	cp.on = false
	c := ss.c.s.cfg.Cache
	keep := pgAnswerKept(cp.resp)
	if ss.mysql {
		keep = mysqlAnswerKept(cp.resp)
	}
	var kept []byte
	if keep && !ss.ps.Pinned() && c.Current(ss.db, cp.snap) {
		c.Put(ss.db, cp.h.key, cp.resp, cp.snap, cp.h.maxAge, cp.h.swr, time.Now())
		kept = cp.resp
	}
	ss.land(kept)
	if cap(cp.resp) > 1<<20 {
		cp.resp = nil
	}
}

// dropCapture stops capturing, the answer not kept; sessions waiting on the flight this one
// leads ask the origin themselves.
func (ss *serverSession) dropCapture() {
	ss.capture.on = false
	ss.land(nil)
}

// land ends the flight the session leads, if any, handing resp (nil: nothing) to its
// followers.
func (ss *serverSession) land(resp []byte) {
	cp := &ss.capture
	if cp.flight != nil {
		ss.c.s.cfg.Cache.Land(cp.h.key, cp.flight, resp, cp.snap)
		cp.flight = nil
	}
}

// pgAnswerKept reports whether PostgreSQL backend messages are an answer an edge would keep:
// no ErrorResponse, and a last ReadyForQuery saying no transaction is open.
func pgAnswerKept(b []byte) bool {
	status := byte(0)
	for i := 0; i+headerLen <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i+1:]))
		if n < 4 || i+1+n > len(b) {
			return false
		}
		switch b[i] {
		case 'E':
			return false
		case 'Z':
			if n >= 5 {
				status = b[i+5]
			}
		}
		i += 1 + n
	}
	return status == 'I'
}

// mysqlAnswerKept reports whether MySQL packets are an answer an edge would keep (as
// proxy's cacheableAnswer): mysqlwire.ReplayableResult.
func mysqlAnswerKept(b []byte) bool { return mysqlwire.ReplayableResult(b) }

// mayUseCache reports whether the pool end may use its cache for the batch b that h hints: a
// cache is configured, the batch draws answers (it is a whole unit), and the session has no
// writes to report first and is not pinned.
func (ss *serverSession) mayUseCache(h *hint, b []byte, mysqlProto bool) bool {
	if h == nil || ss.c.s.cfg.Cache == nil || ss.ps.Pinned() {
		return false
	}
	ss.imu.Lock()
	written := ss.written
	ss.imu.Unlock()
	if written {
		return false
	}
	if mysqlProto {
		draws, quit := mysqlDrawsAnswers(b)
		return draws && !quit
	}
	return drawsAnswers(b)
}

// cacheMiss counts a hinted unit the pool end sends to the origin.
func (ss *serverSession) cacheMiss() {
	ss.c.s.m.cacheQ.WithLabelValues(ss.db, string(cache.Miss)).Inc()
}

package poolend

import (
	"encoding/binary"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// hint is an edge's hint for the batch that follows: its key (in the session's namespace), the
// tables it reads, and how long its answer may be served.
type hint struct {
	key    []byte
	tables []string
	maxAge time.Duration
	swr    time.Duration
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
func (s *session) finish() {
	cp := &s.capture
	if !cp.on {
		s.dropCapture()
		return
	}
	cp.on = false
	c := s.e.cfg.Cache
	keep := pgAnswerKept(cp.resp)
	if s.mysql {
		keep = mysqlwire.ReplayableResult(cp.resp)
	}
	var kept []byte
	if keep && !s.inner.Pinned() && c.Current(s.db, cp.snap) {
		c.Put(s.db, cp.h.key, cp.resp, cp.snap, cp.h.maxAge, cp.h.swr, time.Now())
		kept = cp.resp
	}
	s.land(kept)
	if cap(cp.resp) > 1<<20 {
		cp.resp = nil
	}
}

// dropCapture stops capturing, the answer not kept; sessions waiting on the flight this one
// leads ask the origin themselves. It writes nothing when nothing is captured: a pinned
// session, which never captures, calls it from two goroutines.
func (s *session) dropCapture() {
	if s.capture.on {
		s.capture.on = false
	}
	s.land(nil)
}

// land ends the flight the session leads, if any, handing resp (nil: nothing) to its
// followers.
func (s *session) land(resp []byte) {
	cp := &s.capture
	if cp.flight != nil {
		s.e.cfg.Cache.Land(cp.h.key, cp.flight, resp, cp.snap)
		cp.flight = nil
	}
}

// pgAnswerKept reports whether PostgreSQL backend messages are an answer an edge would keep:
// no ErrorResponse, and a last ReadyForQuery saying no transaction is open.
func pgAnswerKept(b []byte) bool {
	status := byte(0)
	for i := 0; i+5 <= len(b); {
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

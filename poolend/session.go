package poolend

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// session is a client session at the pool end: the origin's own (inner), with the pool's
// cache in front of it and its writes told to the pool's other edges.
type session struct {
	e     *End
	db    string
	ns    string // database NUL user: no answer is served to another's session
	mysql bool   // the session carries MySQL packets
	inner link.Stream
	edges link.Edges // nil: no other edge

	// The unit in flight, the transport's reader's (Send) and, while the session is not
	// pinned, the same goroutine's Recv.
	hint     hint
	hinted   bool          // hint is for the batch Send gets next
	cached   []byte        // an answer without the origin, for the next Recv
	fresh    time.Duration // how much longer cached stays fresh
	fromPool bool          // what Recv returned last came from the cache
	capture  capture

	mu       sync.Mutex // what follows: Send's and a pinned session's pump's
	open     bool       // a unit was sent or answered that has not ended (endUnit)
	written  bool       // the edge reported writes not yet told
	tables   []string
	allTabs  bool
	keepsAll bool // pinned: told at every last answer from now on, the edge reports no more
	closed   bool
}

func newSession(e *End, db string, params map[string]string, inner link.Stream, edges link.Edges) *session {
	return &session{e: e, db: db, ns: db + "\x00" + params["user"], mysql: params["protocol"] == "mysql",
		inner: inner, edges: edges}
}

// Caps: the pool end takes the edge's writes, and offers its cache if it has one; the
// origin's session routes reads to replicas if its pool has them.
func (s *session) Caps() link.Caps {
	c := link.Caps{Writes: s, Replica: s.inner.Caps().Replica}
	if s.e.cfg.Cache != nil {
		c.PoolCache = s
	}
	return c
}

// ReportWrites records what the session's transaction wrote, as the edge reported it with the
// batch that comes next; it is told when a unit ends (endUnit).
func (s *session) ReportWrites(tables []string, all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = true
	s.allTabs = s.allTabs || all || len(s.tables)+len(tables) > maxTables
	if !s.allTabs {
		s.tables = append(s.tables, tables...)
	}
}

// HintCacheable says that the batch Send gets next may be answered from the pool's cache under
// key (in the session's namespace), and that its answer may be kept there.
func (s *session) HintCacheable(key []byte, tables []string, maxAge, swr time.Duration) {
	s.hint.key = append(append(append(s.hint.key[:0], s.ns...), 0), key...)
	s.hint.tables, s.hint.maxAge, s.hint.swr = tables, maxAge, swr
	s.hinted = true
}

// FromPoolCache reports whether what Recv returned last came from the pool's cache, and how
// much longer it is fresh.
func (s *session) FromPoolCache() (time.Duration, bool) { return s.fresh, s.fromPool }

// Send sends a batch to the origin, unless the pool's cache (or another session's identical
// unit in flight) answers it.
func (s *session) Send(ctx context.Context, frames []byte) error {
	s.fromPool = false
	s.mu.Lock()
	s.open = true
	written := s.written
	s.mu.Unlock()
	if s.hinted {
		s.hinted = false
		if !written && !s.inner.Pinned() && s.answered(ctx, frames) {
			return nil
		}
	}
	if err := s.inner.Send(ctx, frames); err != nil {
		s.dropCapture()
		s.tellWrites()
		return err
	}
	return nil
}

// Recv returns the answer the cache gave, or the origin's next answers. When a unit's answers
// have all come, the unit ends (endUnit) before the last of them is returned.
func (s *session) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	if s.cached != nil {
		dst = append(dst, s.cached...)
		s.cached, s.fromPool = nil, true
		return dst, nil
	}
	n := len(dst)
	dst, err := s.inner.Recv(ctx, dst)
	if err != nil {
		s.dropCapture()
		s.tellWrites()
		return dst, err
	}
	if len(dst) > n {
		s.mu.Lock()
		s.open = true // a pinned session's origin speaks unasked
		s.mu.Unlock()
	}
	s.capture.add(dst[n:])
	return dst, nil
}

// Pending reports whether answers are due. When none are while a unit is open, the unit ends
// first (endUnit): the transport sends the unit's last answer once it hears so.
func (s *session) Pending() bool {
	if s.cached != nil || s.inner.Pending() {
		return true
	}
	s.mu.Lock()
	open := s.open
	s.open = false
	s.mu.Unlock()
	if open {
		s.endUnit()
	}
	return false
}

// endUnit tells the unit's writes, before its last answer goes out, and keeps its answer when
// it may be kept: the client's next read finds it.
func (s *session) endUnit() {
	s.tellWrites()
	s.finish()
	if s.inner.Pinned() {
		s.mu.Lock()
		if !s.keepsAll {
			s.keepsAll = true
			s.allTabs = s.allTabs || s.written // the edge reports a pinned session's writes no more
		}
		s.mu.Unlock()
	}
}

func (s *session) Pinned() bool                     { return s.inner.Pinned() }
func (s *session) Skip(frames []byte)               { s.inner.Skip(frames) }
func (s *session) Cancel(ctx context.Context) error { return s.inner.Cancel(ctx) }

// Close ends the origin's session, then tells what it wrote: a write cut off may still have
// been made.
func (s *session) Close() error {
	err := s.inner.Close()
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	if first {
		s.tellWrites()
	}
	return err
}

// tellWrites invalidates what the session reported writing in the pool's cache, first (every
// edge reads through it: an edge told of the write may miss at once and must not find the
// answer from before it here), then on every other edge, and returns when each has
// acknowledged or has been cut off.
func (s *session) tellWrites() {
	s.mu.Lock()
	if !s.written {
		s.mu.Unlock()
		return
	}
	tables, all := slices.Clone(s.tables), s.allTabs || len(s.tables) > maxTables
	if all {
		tables = nil
	}
	if !s.keepsAll {
		s.written, s.tables, s.allTabs = false, s.tables[:0], false
	}
	s.mu.Unlock()
	if c := s.e.cfg.Cache; c != nil {
		c.Invalidate(s.db, tables, all)
	}
	if s.edges != nil {
		s.edges.Invalidate(s.db, tables, all)
	}
}

// answered answers a hinted batch without the origin when it can: from the cache, or with the
// answer of the identical unit another session is asking the origin for. Otherwise, when this
// session leads that unit's flight, it captures its answer, to keep.
func (s *session) answered(ctx context.Context, frames []byte) bool {
	c, h := s.e.cfg.Cache, &s.hint
	if resp, fresh, st := c.Lookup(s.db, h.key, time.Now()); st == cache.Hit {
		s.e.m.cacheQ.WithLabelValues(s.db, string(cache.Hit)).Inc()
		s.answer(frames, resp, fresh)
		return true
	}
	f, leader := c.Join(h.key)
	if leader {
		s.capture.start(c, s.db, h) // before the unit is sent: see finish
		s.capture.flight = f
		s.e.m.cacheQ.WithLabelValues(s.db, string(cache.Miss)).Inc()
		return false
	}
	resp := c.Wait(s.db, f, ctx.Done())
	if resp == nil {
		s.e.m.cacheQ.WithLabelValues(s.db, string(cache.Miss)).Inc()
		return false // the leader got nothing to share: ask the origin
	}
	s.e.m.cacheQ.WithLabelValues(s.db, statusCoalesced).Inc()
	s.answer(frames, resp, h.maxAge)
	return true
}

// statusCoalesced counts a hinted unit answered with the answer another session's identical
// unit, in flight at the same time, got from the origin.
const statusCoalesced = "coalesced"

// answer makes resp the answer of the batch, which the origin's session is told it skipped
// (statements the batch prepares or closes).
func (s *session) answer(frames, resp []byte, fresh time.Duration) {
	s.inner.Skip(frames)
	s.cached, s.fresh = resp, max(fresh, time.Millisecond)
}

var _ link.Stream = (*session)(nil)

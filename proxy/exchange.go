package proxy

import (
	"context"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// The query path of a PostgreSQL session: exchange takes one batch of client messages (a
// unit: a simple Query, or extended-protocol messages up to a Sync or Flush) through these
// steps, each in a file of its own:
//
//	holdBegin      begin.go            a lone BEGIN waits to go out with the unit after it
//	plan, lookup   exchange_lookup.go  classify the unit; answer it from the cache, or join or
//	                                   lead a flight for its key
//	prepareSend    exchange_send.go    a held BEGIN, the writes to report, the pool cache's hint
//	forward        exchange_send.go    send, receive while answers are due; a read outside a
//	                                   transaction is sent again over another pool if the tunnel
//	                                   failed before the client had any of its answer
//	sink           exchange_sink.go    each chunk of answers: BEGIN filter, invalidation and
//	                                   capture for the cache, the hint's count, the client
//	settle, keep   exchange_keep.go    the transaction status; the captured answer stored
//
// unit holds what the steps pass each other.
type unit struct {
	frames []byte
	p      unitPlan

	flight    *cache.Flight  // led by this session: other sessions wait for its answer
	snap      cache.Snapshot // the tables' generations before the unit was sent
	capturing bool           // the answer is copied into sess.capture, to be kept
	landed    []byte         // what the flight lands with: the answer kept, or nothing

	hinter  link.PoolCache // the pool end's cache, if the stream's pool end has one
	hinting bool           // the pool side is told it may keep the answer
	hc      hintCount

	retry    bool // the unit may still be sent again over another pool
	received bool // the stream was read at least once
	status   byte // the last ReadyForQuery status among the answers, 0 if none
}

// exchange answers one batch of client messages: from the cache when it can, from the origin
// otherwise, keeping a copy of a cacheable answer. It reports false when the session is over.
func (sess *session) exchange(ctx context.Context, frames, buf []byte) ([]byte, bool) {
	if held, ok := sess.holdBegin(frames); held {
		return buf, ok
	}
	u := &unit{frames: frames, hinter: sess.stream.Caps().PoolCache} // stays on the stack
	if sess.cache != nil {
		if answered, ok := sess.lookup(ctx, u); answered {
			return buf, ok
		}
	}
	if u.flight != nil {
		defer func() { sess.s.cfg.Cache.Land(u.p.key, u.flight, u.landed, u.snap) }()
	}
	if !sess.prepareSend(ctx, u) {
		return buf, false
	}
	if u.hinting {
		defer u.hc.count(sess.s.m, sess.db, u.hinter)
	}
	buf, ok := sess.forward(ctx, u, buf)
	if !ok || !sess.settle(u, buf) {
		return buf, false
	}
	sess.keep(u)
	return buf, true
}

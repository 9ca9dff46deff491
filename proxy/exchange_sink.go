package proxy

import "github.com/slipstream-proxy/slipstream/cache"

// sink takes one chunk of a unit's answers on its way to the client: the unit can no longer be
// sent again; the cache invalidates what the session wrote and notes the transaction status
// (beforeAnswer), and the chunk is copied while the answer may still be kept; the pool cache's
// hint is counted at the first answer; then the client gets it. It reports false when the
// client's connection failed.
func (sess *session) sink(u *unit, chunk []byte) bool {
	u.retry = false // the client has part of the answer now
	if sess.cache != nil {
		st, failed := sess.beforeAnswer(chunk)
		if st != 0 {
			u.status = st
		}
		if u.capturing {
			sess.captureChunk(u, chunk, failed)
		}
	}
	if u.hc.pending {
		u.hc.count(sess.s.m, sess.db, u.hinter)
	}
	_, err := sess.nc.Write(chunk)
	return err == nil
}

// captureChunk copies chunk into the answer being kept, or stops keeping it: an error is never
// kept, nor an answer larger than the database's max_result_bytes.
func (sess *session) captureChunk(u *unit, chunk []byte, failed bool) {
	if failed || len(sess.capture)+len(chunk) > sess.caching.MaxResultBytes {
		u.capturing = false
		if !failed {
			sess.cacheStatus(cache.OversizedResult)
		}
		return
	}
	sess.capture = append(sess.capture, chunk...)
}

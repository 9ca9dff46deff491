package proxy

import (
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// poolHit is the cache status of a unit the pool's cache answered, after it missed here.
const poolHit = "poolhit"

// hintCount counts the cache status of a hinted unit once: at its first answer, which says
// whether the pool's cache gave it, before the client sees it (as a hit here is counted before
// it is written), or when the unit ends without one.
type hintCount struct {
	pending bool
	status  cache.Status // if the pool's cache did not answer
}

// count counts the unit's status once, and returns it ("" when it was counted already).
func (hc *hintCount) count(m *Metrics, db string, h link.PoolCache) cache.Status {
	if !hc.pending {
		return ""
	}
	hc.pending = false
	st := hc.status
	if _, ok := h.FromPoolCache(); ok {
		st = poolHit
	}
	m.cacheStatus(db, st)
	return st
}

// poolFresh is h's FromPoolCache for a unit that was hinted.
func (sess *session) poolFresh(h link.PoolCache, hinted bool) (time.Duration, bool) {
	if !hinted {
		return 0, false
	}
	return h.FromPoolCache()
}

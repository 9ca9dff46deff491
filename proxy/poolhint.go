package proxy

import (
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
)

// poolCacheHinter is a Stream whose pool end keeps a cache shared by all the pool's edges (the
// QUIC tunnel's): the edge hints each unit it keeps in its own cache, with its key and the
// tables it reads, so that the pool end can answer it from there for any edge, and keep the
// origin's answer there otherwise. The in-process transport has no such cache.
type poolCacheHinter interface {
	HintCacheable(key []byte, tables []string, maxAge, swr time.Duration)
	// FromPoolCache reports whether the answers received last came from the pool's cache, and
	// for how much longer they may be served as fresh: the edge keeps them no longer.
	FromPoolCache() (time.Duration, bool)
}

// poolHit is the cache status of a unit the pool's cache answered, after it missed here.
const poolHit = "poolhit"

// hintCount counts the cache status of a hinted unit once: at its first answer, which says
// whether the pool's cache gave it, before the client sees it (as a hit here is counted before
// it is written), or when the unit ends without one.
type hintCount struct {
	pending bool
	status  cache.Status // if the pool's cache did not answer
}

func (hc *hintCount) count(m *Metrics, db string, h poolCacheHinter) {
	if !hc.pending {
		return
	}
	hc.pending = false
	st := hc.status
	if _, ok := h.FromPoolCache(); ok {
		st = poolHit
	}
	m.cacheStatus(db, st)
}

// poolFresh is h's FromPoolCache for a unit that was hinted.
func (sess *session) poolFresh(h poolCacheHinter, hinted bool) (time.Duration, bool) {
	if !hinted {
		return 0, false
	}
	return h.FromPoolCache()
}

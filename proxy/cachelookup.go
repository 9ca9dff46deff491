package proxy

import (
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
)

// cacheLookup is what the cache says about a cacheable unit before it is sent; the same for
// both protocols.
type cacheLookup struct {
	resp    []byte       // an answer to serve (Hit or Stale); nil: ask the origin
	status  cache.Status // of resp
	refresh bool         // Stale: the caller refreshes the entry and then calls EndRefresh
	// flight is set when the caller leads the origin query for the key: it must Land it, and
	// Put what it gets as of snap.
	flight *cache.Flight
	snap   cache.Snapshot
	// admitted: admit said the answer may be kept; the pool side's cache is told so (hint).
	admitted bool
}

// lookupCache looks key up in c: a fresh or stale answer, or the answer of a flight another
// session leads, or the lead of a new flight when admit says its answer may be kept (admit
// returns the tables it reads); the pool side is then told it may keep the answer too
// (admitted). While stream's lease on the cache has lapsed, nothing stored is served: the edge
// may have missed a write.
func lookupCache(c *cache.Cache, stream link.Stream, db string, key []byte, done <-chan struct{}, admit func() ([]string, bool)) cacheLookup {
	resp, st := c.Get(db, key, time.Now())
	if l := stream.Caps().Lease; l != nil && st != cache.Miss && !l.CacheCurrent() {
		st = cache.Miss
	}
	switch st {
	case cache.Hit:
		return cacheLookup{resp: resp, status: cache.Hit}
	case cache.Stale:
		l := cacheLookup{resp: resp, status: cache.Stale}
		if c.StartRefresh(key) {
			if _, ok := admit(); ok {
				l.refresh, l.admitted = true, true
			} else {
				c.EndRefresh(key)
			}
		}
		return l
	}
	// A miss is kept at once, as Hyperdrive does: three identical selects are a miss and two
	// hits (docs/caching.md has the measurement behind this).
	tables, ok := admit()
	if !ok {
		return cacheLookup{status: cache.Miss}
	}
	f, leader := c.Join(key)
	if !leader {
		if resp := c.Wait(db, f, done); resp != nil {
			return cacheLookup{resp: resp, status: cache.Hit}
		}
		return cacheLookup{status: cache.Miss, admitted: true}
	}
	return cacheLookup{status: cache.Miss, flight: f, snap: c.Snapshot(db, tables), admitted: true}
}

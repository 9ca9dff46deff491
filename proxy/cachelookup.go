package proxy

import (
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
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
}

// lookupCache looks key up in c: a fresh or stale answer, or the answer of a flight another
// session leads, or the lead of a new flight when the key has missed before (the doorkeeper)
// and admit says its answer may be kept (admit returns the tables it reads).
func lookupCache(c *cache.Cache, db string, key []byte, done <-chan struct{}, admit func() ([]string, bool)) cacheLookup {
	switch resp, st := c.Get(db, key, time.Now()); st {
	case cache.Hit:
		return cacheLookup{resp: resp, status: cache.Hit}
	case cache.Stale:
		l := cacheLookup{resp: resp, status: cache.Stale}
		if c.StartRefresh(key) {
			if _, ok := admit(); ok {
				l.refresh = true
			} else {
				c.EndRefresh(key)
			}
		}
		return l
	}
	if !c.Admit(key) {
		return cacheLookup{status: cache.Miss}
	}
	tables, ok := admit()
	if !ok {
		return cacheLookup{status: cache.Miss}
	}
	f, leader := c.Join(key)
	if !leader {
		if resp := c.Wait(db, f, done); resp != nil {
			return cacheLookup{resp: resp, status: cache.Hit}
		}
		return cacheLookup{status: cache.Miss}
	}
	return cacheLookup{status: cache.Miss, flight: f, snap: c.Snapshot(db, tables)}
}

package cache

import "sync"

// DBStats are one database's cache figures: what it holds now and what happened to it.
type DBStats struct {
	Entries, Bytes int64
	// Coalesced counts misses answered by another session's query to the origin (a flight).
	Coalesced int64
	// Invalidations counts writes that moved a table (or the whole database) of it.
	Invalidations int64
	// ReadsBehind counts answers served after the time the database's change stream vouched
	// for (Cache.CurrentUntil): while it was behind by more than max_lag. It must stay 0.
	ReadsBehind int64
}

// dbStats keeps DBStats per database; entries and bytes follow Put and the entries' removal.
type dbStats struct {
	mu sync.Mutex
	m  map[string]*DBStats
}

func (s *dbStats) update(db string, f func(*DBStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*DBStats)
	}
	d := s.m[db]
	if d == nil {
		d = new(DBStats)
		s.m[db] = d
	}
	f(d)
}

// entryCost is what an entry counts for against the cache's size.
func entryCost(e *Entry) int64 { return int64(len(e.resp) + len(e.key) + 64) }

// added counts an entry stored; removed one that left (evicted, expired, replaced, rejected).
func (s *dbStats) added(e *Entry) {
	s.update(e.db, func(d *DBStats) { d.Entries++; d.Bytes += entryCost(e) })
}

func (s *dbStats) removed(e *Entry) {
	if e == nil {
		return
	}
	s.update(e.db, func(d *DBStats) { d.Entries--; d.Bytes -= entryCost(e) })
}

// DBStats returns a copy of every database's figures.
func (c *Cache) DBStats() map[string]DBStats {
	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	out := make(map[string]DBStats, len(c.stats.m))
	for k, v := range c.stats.m {
		out[k] = *v
	}
	return out
}

package cache

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Status is the cache status of one query, named as Hyperdrive names them.
type Status string

// Cache statuses.
const (
	Hit                Status = "hit"
	Miss               Status = "miss"
	Uncacheable        Status = "uncacheable"
	Transaction        Status = "transaction"
	Volatile           Status = "volatile"
	MultipleStatements Status = "multiplestatements"
	NotAQuery          Status = "notaquery"
	OversizedResult    Status = "oversizedresult"
	ParseError         Status = "parseerror"
	Disabled           Status = "disabled"
	Stale              Status = "stale"
)

// Statuses lists every status, for metrics.
var Statuses = []Status{Hit, Stale, Miss, Uncacheable, Transaction, Volatile, MultipleStatements, NotAQuery, OversizedResult, ParseError, Disabled}

// Entry is one cached answer.
type Entry struct {
	db     string // for the per-database figures (stats.go)
	key    []byte // the full key, compared on every hit: hashes never decide alone
	resp   []byte
	tables []string
	gens   []uint64 // generation of each table when the query was sent
	dbGen  uint64
	expiry time.Time // served fresh until then
	stale  time.Time // then served stale, while one refresh runs, until then
}

// Snapshot is the state of the generations a query depends on, taken before it is sent.
type Snapshot struct {
	tables []string
	gens   []uint64
	dbGen  uint64
}

// Cache is the result cache of one edge, shared by all its databases.
type Cache struct {
	rc *ristretto.Cache[string, *Entry]

	mu        sync.Mutex
	gens      map[tableID]uint64   // generation of each table, by database and last name part
	dbGens    map[string]uint64    // db -> generation
	suspended map[string]bool      // databases whose change stream is down or behind: nothing served or kept
	until     map[string]time.Time // databases whose change stream vouches for their answers only until then

	fmu        sync.Mutex
	flights    map[string]*Flight
	refreshing map[string]bool

	stats dbStats
}

// New returns a cache holding at most maxBytes of answers.
func New(maxBytes int64) (*Cache, error) {
	c := &Cache{gens: make(map[tableID]uint64), dbGens: make(map[string]uint64), suspended: make(map[string]bool),
		until: make(map[string]time.Time), flights: make(map[string]*Flight), refreshing: make(map[string]bool)}
	rc, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters: max(maxBytes/1000, 1000), // about ten counters per entry of ~10 KB
		MaxCost:     maxBytes,
		BufferItems: 64,
		OnExit:      c.stats.removed,
	})
	if err != nil {
		return nil, err
	}
	c.rc = rc
	return c, nil
}

// Close releases the cache's goroutines.
func (c *Cache) Close() { c.rc.Close() }

// tableKey names a table for invalidation by its last name part only: "public.users" and
// "users" are one table here, so a write through either name reaches reads through both (at
// worst a few more misses across schemas).
func tableKey(db, table string) tableID {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		table = table[i+1:]
	}
	return tableID{db, strings.Trim(table, `"`)} // substrings: looking one up allocates nothing
}

// tableID is a table's key in the generations map (tableKey).
type tableID struct{ db, table string }

// Snapshot records the generations of tables in db, before the query that reads them is sent.
func (c *Cache) Snapshot(db string, tables []string) Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{tables: tables, gens: make([]uint64, len(tables)), dbGen: c.dbGens[db]}
	for i, t := range tables {
		s.gens[i] = c.gens[tableKey(db, t)]
	}
	return s
}

// fresh reports whether no table of e moved since e's query was sent. An answer served after
// the time db's change stream vouches for (CurrentUntil) is counted in DBStats.ReadsBehind.
func (c *Cache) fresh(db string, e *Entry, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.current(db, Snapshot{tables: e.tables, gens: e.gens, dbGen: e.dbGen}) {
		return false
	}
	if until, ok := c.until[db]; ok && now.After(until) {
		c.stats.update(db, func(d *DBStats) { d.ReadsBehind++ })
	}
	return true
}

// Current reports whether no table in snap moved since snap was taken.
func (c *Cache) Current(db string, snap Snapshot) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current(db, snap)
}

func (c *Cache) current(db string, snap Snapshot) bool {
	if c.dbGens[db] != snap.dbGen || c.suspended[db] {
		return false
	}
	for i, t := range snap.tables {
		if c.gens[tableKey(db, t)] != snap.gens[i] {
			return false
		}
	}
	return true
}

// Get returns the cached answer for key in db when no table it read has moved: Hit while it is
// younger than its max age, Stale within the stale-while-revalidate window after that (the
// caller serves it and refreshes it), Miss otherwise. The bytes must not be modified.
func (c *Cache) Get(db string, key []byte, now time.Time) ([]byte, Status) {
	resp, _, st := c.Lookup(db, key, now)
	return resp, st
}

// Lookup is Get, also saying how much longer a Hit stays fresh: a cache that keeps the
// answer in turn keeps it no longer than that.
func (c *Cache) Lookup(db string, key []byte, now time.Time) ([]byte, time.Duration, Status) {
	e, ok := c.rc.Get(string(key))
	if !ok || !bytes.Equal(e.key, key) || now.After(e.stale) || !c.fresh(db, e, now) {
		return nil, 0, Miss
	}
	if now.After(e.expiry) {
		return e.resp, 0, Stale
	}
	return e.resp, e.expiry.Sub(now), Hit
}

// Put stores resp as the answer for key, fresh for maxAge and then stale for swr, unless a
// table in snap moves. Nothing is stored for a suspended database.
func (c *Cache) Put(db string, key, resp []byte, snap Snapshot, maxAge, swr time.Duration, now time.Time) {
	if !c.Current(db, snap) {
		return
	}
	e := &Entry{db: db, key: bytes.Clone(key), resp: bytes.Clone(resp), tables: snap.tables, gens: snap.gens, dbGen: snap.dbGen,
		expiry: now.Add(maxAge), stale: now.Add(maxAge + swr)}
	if c.rc.SetWithTTL(string(key), e, entryCost(e), maxAge+swr) {
		c.stats.added(e)
	}
}

// StartRefresh reports whether the caller should refresh the stale entry of key: only one
// refresh runs per key. The caller must call EndRefresh.
func (c *Cache) StartRefresh(key []byte) bool {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if c.refreshing[string(key)] {
		return false
	}
	c.refreshing[string(key)] = true
	return true
}

// EndRefresh ends a refresh StartRefresh granted.
func (c *Cache) EndRefresh(key []byte) {
	c.fmu.Lock()
	delete(c.refreshing, string(key))
	c.fmu.Unlock()
}

// Suspend drops every cached answer of db and serves or keeps none until Resume: db's change
// stream is down or behind, so a write could go unheard (pool/changes).
func (c *Cache) Suspend(db string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.suspended[db] = true
	c.dbGens[db]++
}

// Resume lets db be cached again after Suspend.
func (c *Cache) Resume(db string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.suspended, db)
}

// CurrentUntil records until when db's change stream vouches for db's answers: the stream is
// to be suspended (Suspend) before then unless it vouches again. An answer served later, which
// a write the stream has not delivered yet may have made stale, is counted in
// DBStats.ReadsBehind (slipstream_change_stream_reads_behind_total: it must stay 0). The zero
// time removes the limit.
func (c *Cache) CurrentUntil(db string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() {
		delete(c.until, db)
		return
	}
	c.until[db] = t
}

// Invalidate bumps the generations of the tables written in db, or of the whole database.
func (c *Cache) Invalidate(db string, tables []string, all bool) {
	c.stats.update(db, func(d *DBStats) { d.Invalidations++ })
	c.mu.Lock()
	defer c.mu.Unlock()
	if all {
		c.dbGens[db]++
		return
	}
	for _, t := range tables {
		k := tableKey(db, t)
		if _, ok := c.gens[k]; !ok {
			k = tableID{strings.Clone(k.db), strings.Clone(k.table)} // kept: not a view into a query's text
		}
		c.gens[k]++
	}
}

// Settle blocks until buffered writes are applied; for tests.
func (c *Cache) Settle() { c.rc.Wait() }

// Flight is one origin query that concurrent identical misses share.
type Flight struct {
	done chan struct{}
	resp []byte   // nil: the leader got nothing cacheable; followers ask the origin themselves
	snap Snapshot // when the leader's query was sent
}

// Join returns the flight for key and whether the caller leads it. A leader must call Land.
func (c *Cache) Join(key []byte) (f *Flight, leader bool) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if f := c.flights[string(key)]; f != nil {
		return f, false
	}
	f = &Flight{done: make(chan struct{})}
	c.flights[string(key)] = f
	return f, true
}

// Land ends a flight the caller leads, handing a copy of resp (nil if none), read as of snap,
// to its followers.
func (c *Cache) Land(key []byte, f *Flight, resp []byte, snap Snapshot) {
	c.fmu.Lock()
	delete(c.flights, string(key))
	c.fmu.Unlock()
	if resp != nil {
		f.resp, f.snap = bytes.Clone(resp), snap
	}
	close(f.done)
}

// Wait returns the leader's answer, or nil when the follower must ask the origin itself:
// the leader got nothing cacheable, or a table it read moved since it asked (a follower that
// joined after a write must not get an answer from before it).
func (c *Cache) Wait(db string, f *Flight, done <-chan struct{}) []byte {
	select {
	case <-f.done:
		if f.resp != nil && c.Current(db, f.snap) {
			c.stats.update(db, func(d *DBStats) { d.Coalesced++ })
			return f.resp
		}
	case <-done:
	}
	return nil
}

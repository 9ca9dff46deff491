package pool

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/link"
)

// relatedSQL lists the pairs of relations whose rows change together, so that a cached read of
// one is stale after a write to the other: a view and the relations it reads (a write through
// the view changes them; a write to them changes what the view shows), a partitioned or
// inherited table and its children, a table and the tables whose foreign keys cascade from it
// (ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT), a table and the sequences it owns (serial
// and identity columns: an INSERT advances them); and, paired with "*", tables with user
// triggers or rules, whose writes may change any table. Materialized views change only when
// refreshed, so they pair with nothing.
const relatedSQL = `select v.relname, t.relname
  from pg_catalog.pg_rewrite r
  join pg_catalog.pg_class v on v.oid = r.ev_class and v.relkind = 'v'
  join pg_catalog.pg_depend d on d.objid = r.oid and d.classid = 'pg_catalog.pg_rewrite'::regclass
    and d.refclassid = 'pg_catalog.pg_class'::regclass
  join pg_catalog.pg_class t on t.oid = d.refobjid and t.oid <> v.oid
union
select p.relname, c.relname
  from pg_catalog.pg_inherits i
  join pg_catalog.pg_class p on p.oid = i.inhparent
  join pg_catalog.pg_class c on c.oid = i.inhrelid
union
select p.relname, c.relname
  from pg_catalog.pg_constraint k
  join pg_catalog.pg_class p on p.oid = k.confrelid
  join pg_catalog.pg_class c on c.oid = k.conrelid
  where k.contype = 'f' and (k.confdeltype in ('c', 'n', 'd') or k.confupdtype in ('c', 'n', 'd'))
union
select t.relname, s.relname
  from pg_catalog.pg_depend d
  join pg_catalog.pg_class s on s.oid = d.objid and s.relkind = 'S'
  join pg_catalog.pg_class t on t.oid = d.refobjid
  where d.classid = 'pg_catalog.pg_class'::regclass and d.refclassid = 'pg_catalog.pg_class'::regclass
    and d.deptype in ('a', 'i')
union
select c.relname, '*'
  from pg_catalog.pg_trigger g join pg_catalog.pg_class c on c.oid = g.tgrelid
  where not g.tgisinternal
union
select c.relname, '*'
  from pg_catalog.pg_rewrite r join pg_catalog.pg_class c on c.oid = r.ev_class
  where r.rulename <> '_RETURN'`

// CatalogHook is the part of a pool that tells whoever asked (the tunnel's pool end) that it
// read its origin's catalog again and found it changed, so that edges fetch the new profile.
// The pools of both protocols embed it.
type CatalogHook struct {
	mu sync.Mutex
	f  func()
}

// OnCatalogChange has f called after the pool read its origin's catalog again because a
// statement changed it (before that statement's answer goes to its client) or, at a
// catalog_refresh, because it changed without Slipstream: the tunnel's pool end then has its
// edges fetch the new profile. Call it before the pool serves sessions.
func (h *CatalogHook) OnCatalogChange(f func()) {
	h.mu.Lock()
	h.f = f
	h.mu.Unlock()
}

// TellCatalog calls the OnCatalogChange function, if any.
func (h *CatalogHook) TellCatalog() {
	h.mu.Lock()
	f := h.f
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

// DefaultCatalogRefresh is how often a pool reads its origin's catalog again when its Config
// does not say.
const DefaultCatalogRefresh = 30 * time.Second

// WatchCatalog reads a pool's origin catalog again every interval (0: DefaultCatalogRefresh;
// negative: never) until ctx ends, to learn of changes made without Slipstream: while active
// says the pool has read it once and still has connections (an idle pool stays idle), refresh
// reads it and reports whether it changed, and then tell has the edges fetch the new profile.
func WatchCatalog(ctx context.Context, interval time.Duration, log *slog.Logger, active, refresh func() bool, tell func()) {
	if interval < 0 {
		return
	}
	if interval == 0 {
		interval = DefaultCatalogRefresh
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if active() && refresh() {
			tell()
			log.Info("the origin's catalog changed outside Slipstream; the cache follows the new one")
		}
	}
}

// readRelated reads relatedSQL on pc. It returns the zero Related when the origin has no such
// catalog (D1, KV).
func readRelated(ctx context.Context, pc *pgconn.PgConn) link.Related {
	rr := pc.ExecParams(ctx, relatedSQL, nil, nil, nil, nil)
	var pairs [][2]string
	for rr.NextRow() {
		if v := rr.Values(); len(v) == 2 {
			pairs = append(pairs, [2]string{string(v[0]), string(v[1])})
		}
	}
	if _, err := rr.Close(); err != nil {
		return link.Related{}
	}
	rel := GroupRelated(pairs)
	rel.Writers = readWriters(ctx, pc)
	return rel
}

// GroupRelated joins pairs of relations whose rows change together into connected groups; a
// pair with "*" lists its table under AnyTable instead. Origins of other protocols build their
// Related with it (pool/mysql).
func GroupRelated(pairs [][2]string) link.Related {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		p, ok := parent[x]
		if !ok || p == x {
			parent[x] = x
			return x
		}
		r := find(p)
		parent[x] = r
		return r
	}
	var rel link.Related
	for _, p := range pairs {
		if p[1] == "*" {
			rel.AnyTable = append(rel.AnyTable, p[0])
			continue
		}
		if a, b := find(p[0]), find(p[1]); a != b {
			parent[a] = b
		}
	}
	groups := map[string][]string{}
	for x := range parent {
		r := find(x)
		groups[r] = append(groups[r], x)
	}
	for _, g := range groups {
		slices.Sort(g)
		rel.Groups = append(rel.Groups, g)
	}
	slices.SortFunc(rel.Groups, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	slices.Sort(rel.AnyTable)
	rel.AnyTable = slices.Compact(rel.AnyTable)
	return rel
}

package pool

import (
	"context"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/classify"
)

// writersSQL lists the origin's own VOLATILE functions (not pg_catalog's, not trigger functions,
// which no query calls) with their language and source: the SQL body, or for PL/pgSQL the whole
// definition, which is what its parser reads. Only a VOLATILE function may write: PostgreSQL
// refuses INSERT, UPDATE and DELETE in a STABLE or IMMUTABLE one.
const writersSQL = `select p.proname, l.lanname,
    case when l.lanname = 'plpgsql' then pg_catalog.pg_get_functiondef(p.oid) else p.prosrc end
  from pg_catalog.pg_proc p
  join pg_catalog.pg_language l on l.oid = p.prolang
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  where p.provolatile = 'v' and p.prokind = 'f'
    and n.nspname not in ('pg_catalog', 'information_schema')
    and p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype`

// anyRelation is the one name in a Writers entry of a function that may write any relation.
const anyRelation = "*"

// readWriters reads writersSQL on pc and says, for each function, what calling it may write:
// what its body writes and, followed from call to call, what the functions it calls write. A
// function whose body the parser can't read, or that runs dynamic SQL, writes anyRelation. It
// returns nil when the origin has no such catalog.
func readWriters(ctx context.Context, pc *pgconn.PgConn) map[string][]string {
	rr := pc.ExecParams(ctx, writersSQL, nil, nil, nil, nil)
	bodies := map[string]classify.Body{}
	for rr.NextRow() {
		v := rr.Values()
		if len(v) != 3 {
			continue
		}
		name, b := string(v[0]), classify.FunctionBody(string(v[1]), string(v[2]))
		if prev, ok := bodies[name]; ok { // overloads: a call by name may be any of them
			b = classify.Body{Writes: append(prev.Writes, b.Writes...), Calls: append(prev.Calls, b.Calls...), All: prev.All || b.All}
		}
		bodies[name] = b
	}
	if _, err := rr.Close(); err != nil {
		return nil
	}
	return FollowCalls(bodies)
}

// FollowCalls turns what each function's own body does into what a call of it may write,
// through every function it calls in turn: the union of their writes, or anyRelation if any of
// them may write anything. Calls of functions not in bodies (built-ins, STABLE and IMMUTABLE
// functions) write nothing.
func FollowCalls(bodies map[string]classify.Body) map[string][]string {
	all := map[string]bool{}
	writes := map[string]map[string]bool{}
	for name, b := range bodies {
		all[name] = b.All
		writes[name] = map[string]bool{}
		for _, w := range b.Writes {
			writes[name][w] = true
		}
	}
	// Each round carries writes one call further; a chain is at most len(bodies) calls long.
	for changed, round := true, 0; changed && round <= len(bodies); round++ {
		changed = false
		for name, b := range bodies {
			for _, callee := range b.Calls {
				if _, ok := bodies[callee]; !ok || callee == name {
					continue
				}
				if all[callee] && !all[name] {
					all[name], changed = true, true
				}
				for w := range writes[callee] {
					if !writes[name][w] {
						writes[name][w], changed = true, true
					}
				}
			}
		}
	}
	out := make(map[string][]string, len(bodies))
	for name := range bodies {
		if all[name] {
			out[name] = []string{anyRelation}
			continue
		}
		out[name] = slices.Sorted(maps.Keys(writes[name]))
	}
	return out
}

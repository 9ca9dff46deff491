package link

import (
	"maps"
	"slices"
	"time"
)

// Profile is what an edge needs to answer a client's startup without asking the origin:
// the ParameterStatus values the origin reported to the pool's first connection.
type Profile struct {
	Parameters map[string]string
	// Volatility maps function names to the origin's pg_proc.provolatile ('i', 's', 'v'),
	// the most volatile overload of each name; empty when the origin has no such catalog.
	Volatility map[string]byte
	// OriginLatency is the pool's measured round trip to the origin (placement.Prober), which
	// edges use to pick the pool nearest each database; 0 for an embedded origin or a pool that
	// does not measure, negative when the measurement failed.
	OriginLatency time.Duration
	// Related are the relations whose rows change together (views and what they read,
	// partitions, cascading foreign keys) and the tables whose writes may change any (triggers,
	// rules), from the origin's catalog: the edge keeps a cached read under every table whose
	// writes may change it. Zero for an origin without such a catalog.
	Related Related
}

// Related is what the origin's catalog says about relations whose rows change together.
type Related struct {
	// Groups are the sets of relations, by name, whose rows change together, joined: a write
	// to one member may change what a read of any other returns.
	Groups [][]string
	// AnyTable are the tables whose writes may change any table (user triggers, rules).
	AnyTable []string
	// Writers maps each VOLATILE function of the origin's own, by name, to the relations a call
	// of it may write, following its calls of other functions; ["*"] for one that may write
	// anything (dynamic SQL, a language the parser can't read). A function that is not here
	// writes nothing if the catalog knows it, and may write anything if it does not (it was
	// made after the catalog was read). Nil for an origin without such a catalog.
	Writers map[string][]string
}

// Equal reports whether r and o list the same groups and tables (sorted, as the pool makes
// them).
func (r Related) Equal(o Related) bool {
	return slices.EqualFunc(r.Groups, o.Groups, slices.Equal) && slices.Equal(r.AnyTable, o.AnyTable) &&
		maps.EqualFunc(r.Writers, o.Writers, slices.Equal)
}

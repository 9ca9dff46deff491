package link

import "time"

// Caps is what a Stream's pool end does beyond carrying frames. The edge asks the stream for it
// (Stream.Caps) rather than guessing from the stream's type; a nil field is a thing this pool
// end does not do. A pool in the edge's own process (`slipstream serve`) has no other edge and
// no cache of its own: its sessions' Caps are zero.
type Caps struct {
	// Writes is set when the pool end has other edges to tell about the session's writes (the
	// QUIC tunnel's): the edge reports what a transaction wrote with the batch that may make it
	// visible, and the pool end has every other edge invalidate it before that batch's last
	// answer leaves.
	Writes WriteReporter
	// PoolCache is set when the pool end keeps a cache shared by all its edges.
	PoolCache PoolCache
	// Lease is set when the edge may serve its own cache only while the pool end keeps renewing
	// a lease on it.
	Lease Lease
	// Replica is set when the pool end may send reads to a replica of the origin (a PlanetScale
	// MySQL database with replica_reads): the pool's session itself under `slipstream serve`;
	// across the QUIC tunnel, every MySQL stream, whose route frames the pool end hands to its
	// session's own Replica, if it has one.
	Replica ReplicaRouter
}

// ReplicaRouter is told, before each command of a cached database, whether it is a read the
// edge would cache (outside a transaction, reading with immutable functions only, in a session
// whose state the cache key covers) and whether it writes or belongs to a transaction that
// wrote: the pool end sends such reads to a replica unless the session wrote within
// read_your_writes, and everything else to the primary.
type ReplicaRouter interface {
	Route(read, write bool)
}

// WriteReporter tells the pool end what the session's transaction wrote (see Caps.Writes).
type WriteReporter interface {
	ReportWrites(tables []string, all bool)
}

// PoolCache is the pool end's cache, shared by all its edges: the edge hints each unit it keeps
// in its own cache, with its key and the tables it reads, so that the pool end can answer it
// from there for any edge, and keep the origin's answer there otherwise.
type PoolCache interface {
	HintCacheable(key []byte, tables []string, maxAge, swr time.Duration)
	// FromPoolCache reports whether the answers received last came from the pool's cache, and
	// for how much longer they may be served as fresh: the edge keeps them no longer.
	FromPoolCache() (time.Duration, bool)
}

// Lease says whether the edge's cache is current: the pool end has renewed its lease in time,
// so the edge has missed no invalidation.
type Lease interface {
	CacheCurrent() bool
}

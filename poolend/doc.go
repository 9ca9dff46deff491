// Package poolend is what the pool end does with a client session besides running it at the
// origin: the cache it shares among all its edges (Hyperdrive's second layer), and telling the
// pool's other edges about the session's writes. It wraps each origin of a pool
// (End.Origin); the tunnel carries frames and knows nothing of either.
//
// Start reading at End (end.go), then session (session.go): a link.Stream around the origin's
// own, whose Caps offer the edge's side of the contract to the transport.
//
// # The pool's cache
//
// An edge hints a unit it keeps in its own cache (link.PoolCache.HintCacheable): its key, the
// tables it reads, its max age and stale-while-revalidate. The transport passes the hint on
// before the batch it is for. A hinted batch is answered from the pool's cache when it holds a
// fresh answer under the key, in the namespace of the session's database and user: the origin's
// session is told what the batch skipped (Skip), and the answer is received as one chunk that
// FromPoolCache says came from here, with how much longer it is fresh, so that the edge keeps
// it no longer. Otherwise the batch goes to the origin; as the edge does at a key's first miss,
// the session joins the key's flight (identical units of all the edges at the same time send
// one query to the origin), snapshots the tables' generations first, and keeps the answer when
// it is one an edge would keep (PostgreSQL: no ErrorResponse, the last ReadyForQuery idle;
// MySQL: a result set outside a transaction, with no warnings), and no table moved since the
// snapshot. The pool end reads no SQL: it trusts its edges' keys and tables.
//
// # Writes
//
// The edge reports what a session's transaction has written (link.WriteReporter.ReportWrites)
// with a batch that may make it visible. When that batch's last answer arrives, before it is
// returned to the transport, the session invalidates the pool's cache (every edge reads through
// it: an edge told of the write may miss at once and must not find the answer from before it
// here), then the other edges (link.Edges, which the transport put in the session's context),
// and only then does the answer go on. A session that fails or ends tells them too: a write cut
// off may still have been made. A pinned session's writes are told at every last answer.
//
// # Replica reads
//
// The session's Caps pass on the origin session's link.ReplicaRouter (a MySQL pool with
// replicas): the transport tells it, before each command, what the edge said of it.
//
// Concurrency: as link.Stream. A pinned session's Recv runs on the transport's pump goroutine
// while Send runs on its reader; the writes to tell are guarded by a mutex of their own.
package poolend

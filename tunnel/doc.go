// Package tunnel carries client sessions from the edge to the pool side.
//
// Start reading at Transport and Stream (tunnel.go): the edge asks a Transport for a database's
// origin profile, to answer a client's startup itself, and opens one Stream per client session.
// A Stream moves PostgreSQL protocol frames: Send takes what the client wrote, Recv returns what
// the client must read. Two transports implement them, so the edge's session code is the same
// in one process and across regions:
//
//   - Local (local.go), for `slipstream serve`: a Stream is the pool's session itself.
//   - QUIC: Client (client.go, stream.go) on the edge, Server (server.go) on the pool side,
//     serving Origins. Either end may dial: normally the edge dials the pool (Dial, Serve);
//     with the reverse tunnel the pool dials the edge (Server.DialEdge, Listen), and the edge
//     still opens the streams.
//
// # QUIC
//
// One long-lived connection per edge-pool pair, mutual TLS 1.3 with certificates of the
// deployment's CA (tls.go; package certs makes and loads them), keep-alives, and a redial whenever it is lost. Each client
// session gets a QUIC stream of its own for its whole life. A stream per session rather than
// per unit: opening one costs nothing on the wire, the pool end keeps the session's state with
// the stream, and QUIC's per-stream flow control holds back the answers of a client that reads
// slowly without stalling anyone else's, which one shared stream (TCP's head-of-line blocking)
// could not. Profile and Cancel requests go on short streams of their own.
//
// Every stream starts with the protocol version and its kind; then frames: type, length,
// payload (frame.go), lengths checked before anything is allocated. The ALPN protocol names the
// version too, so mismatched nodes fail the handshake.
//
//	edge (Client)                              pool end (Server)
//	 │ Open: new stream, [v S] Open(db, params) ─>│ origin.Open   (no round trip waited for)
//	 │ Send: [Writes(tables)] [Hint(key, tables, max age)] [Route(read, write)] Batch(frames) ─> Session.Send
//	 │   (a batch over 1 MiB: More(part)..., Batch(last part), answered as one)
//	 │   a batch that draws answers (Q S H F c f) sets pending on the edge
//	 │<──────────────────── Data(flags, answers) ─│ Recv while Pending, one frame per Recv,
//	 │<──────────────────── Data(pending=false) ──│ at least one frame, the last not pending
//	 │<── Data(cached, fresh for, answers) ───────│ a hinted batch the pool's cache answers
//	 │                                            │   (poolend): one frame, the origin not asked
//	 │ Skip: Skip(frames) ───────────────────────>│ Session.Skip (no answer)
//	 │   once pinned, the pool end receives continuously and pushes Data(pinned)
//	 │<───────────────────────── Error(code, text)│ ErrOriginLost, ErrQueueTimeout, ...: the last frame
//	 │ Cancel: new stream, [v C] Cancel(id) ─────>│ Session.Cancel ─> Ok
//	 │ Profile: new stream, [v P] Open(db) ──────>│ origin.Profile ─> Profile
//	 │<── new stream, [v I] Invalidate(db, tables)│ another edge's write, before its last Data
//	 │ cache.Invalidate, then Ok ────────────────>│   (no Ok within AckTimeout: connection closed)
//	 │<────── new stream, [v L] Lease(ms), Lease..│ every AckTimeout/4, for the connection's life,
//	 │                                            │   each after the change streams' StreamStates
//	 │<── new stream, [v I] StreamState(db, seq) ─│ the pool's change stream of db suspended or
//	 │ cache.Suspend / Resume, then Ok ──────────>│   resumed (streamstate.go)
//	 │<────────── new stream, [v I] Catalog(db) ──│ the origin's catalog changed (a statement's
//	 │ Profile request, then Ok ─────────────────>│   DDL), before that statement's last Data
//	 │ Close: reset the stream ──────────────────>│ Session.Close
//
// # Invalidations
//
// The edge reports what a session's transaction has written (Writes, from its classification
// of the statements) with a batch that may make it visible: outside a transaction block, or a
// COMMIT. The pool side (poolend) then has the Server send an Invalidate to every other
// connected edge (link.Edges), which waits for each one's Ok, or closes its connection after
// AckTimeout, before the batch's last Data frame goes out: the answer that tells the client the
// write is done. The writing edge invalidates
// its own cache as that answer passes. An edge drops its cache of a pool's databases whenever
// its connection to that pool ends or is made, since it can't know what it missed.
//
// An edge cut off from the network learns that its connection was closed only at the idle
// timeout (5 s). So it serves its cache only under a lease: the pool end opens one stream per
// connection (kindLease) and renews the lease on it every AckTimeout/4, each renewal good for
// AckTimeout/2 from when it was sent (its arrival less half the connection's smoothed RTT:
// Client.CacheCurrent). An edge that stops hearing the pool stops serving cached answers within
// the lease of the last renewal, before the pool end, having waited AckTimeout for an
// acknowledgement it never got, lets a write's answer out; it sends its reads to the pool
// instead, which fail while the partition lasts. The bound holds while a renewal takes less than
// AckTimeout/2 more than half the smoothed RTT to arrive and be read; a lapse costs cache hits,
// never a stale answer. An edge more than AckTimeout (1 s) away from its pool gets no lease: it
// could not acknowledge invalidations in time either.
//
// A pool that invalidates a database from its change stream (pool/changes) passes the stream's
// state on (streamstate.go): while the stream is down or behind, every edge serves and keeps
// nothing of the database; while it is current, each edge knows until when the stream vouches
// for the database's answers and counts what it serves after that.
//
// # The pool's cache
//
// The pool side may keep a cache of its own, shared by all its edges (package poolend, which
// wraps the origins a Server serves). The tunnel only carries its frames: an edge sends a Hint
// frame before a batch that missed its cache and whose answer it may keep (its key, the tables
// the unit reads, its max age and stale-while-revalidate), which the pool end hands to the
// session's link.PoolCache; an answer the pool's cache gave goes back as one data frame flagged
// cached, with how much longer it is fresh, so that the edge keeps it no longer. The edge's
// Writes frames go to the session's link.WriteReporter; the session tells the other edges
// through the link.Edges the pool end puts in the context it opens the session with, before its
// last answer is returned, so before the last Data frame leaves. The tunnel reads no SQL.
//
// So a query costs one WAN round trip and a new client session none: the edge knows Pending
// from the flags, without asking, and caches each database's profile, refreshing it in the
// background.
//
// # Replica reads
//
// A MySQL session's edge says, in a Route frame in front of a command, that it is a read the edge
// would cache that missed its cache, or that it writes (link.ReplicaRouter); the pool end hands
// that to the session's link.ReplicaRouter, which sends such reads to a replica pool unless the
// session wrote within read_your_writes (route.go). A command without a Route frame goes to the
// primary.
//
// A database that lets any role in (link.RoleOrigin) answers role lookups on kindRole streams
// of their own (roles.go): the edge asks for a role's verifier at its first login.
//
// Concurrency: see Stream. The tunnel interprets no SQL: it reads message types only.
package tunnel

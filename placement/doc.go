// Package placement decides which pool serves each database: the one nearest the origin.
//
// Hyperdrive places its connection pools next to the database, because a query crosses the
// WAN once between the edge and the pool but may cross the pool–origin link several times
// (connection setup, TLS, authentication, each statement). So each pool measures its latency to
// each origin (Probe: repeated cheap protocol exchanges on fresh TCP connections, median) and
// reports it; an edge's Router asks every
// pool it knows for those figures and sends each database's sessions to the pool with the
// lowest one, unless the configuration pins the database to a region.
//
// Start reading at Router (router.go), a link.Transport over several pools' transports.
//
//	edge                       Router                         pools (regions)
//	 │ Open(db, params) ───────>│ best(db): pinned region, or
//	 │                          │   the live pool with the lowest origin latency
//	 │                          │ Open ────────────────────────>│ chosen pool
//	 │                          │ error? mark that pool down, try the next best
//	 │                          │
//	 │                          │ every Interval: Ping each pool, refresh latencies
//
// A pool that dies stops being chosen within one Interval, at once when an Open through it
// fails, and goes last as soon as its tunnel connection ends (the QUIC idle timeout, 5 s). A
// session on it whose unit in flight is a read outside a transaction, with no answer written
// yet and a state the edge can set up again (proxy: retryable), is opened again on the next
// pool and the read sent there; any other session ends with the tunnel's error
// (tunnel.ErrPoolLost, an ErrOriginLost): writes in flight are never retried (DESIGN.md
// invariant 2), and the client reconnects and lands on the next pool. A MySQL session is moved
// likewise for a COM_QUERY read on a session with nothing a new pool side would lack (no USE,
// SET NAMES, prepared statements...: proxy's mysqlRetryable).
//
// Concurrency: a Router is safe for concurrent use; Run refreshes it in the background.
package placement

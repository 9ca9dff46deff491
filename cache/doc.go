// Package cache keeps the answers to cacheable reads at the edge, so that a popular read is
// answered from memory with no round trip to the origin.
//
// Start reading at Cache. An entry is the exact bytes the origin sent for one unit of work, so
// a hit is a memory copy and byte for byte what the origin would have sent. Freshness has two
// parts: an entry expires after its max age, and every entry remembers the generation of each
// table it read (and of its database) when its query was sent. A write bumps the generations of
// the tables it wrote (DDL and writes of unknown reach bump the database's) before its answer
// reaches the client, so any entry that read those tables is a miss from then on: a client
// always sees its own writes, and so does every other client of the process.
//
// Flights coalesce concurrent misses for the same key: one session asks the origin, the others
// wait for its answer.
//
// The cache does no SQL parsing and no I/O; it is safe for concurrent use.
package cache

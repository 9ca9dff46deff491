// Package changes invalidates cached reads from the origin's own change stream, so that a
// write made without Slipstream (a migration, a cron job, a service that talks to the database
// directly, another region's pool) drops the answers it made stale within about a second
// instead of after max_age.
//
// Start reading at Run (changes.go): it keeps one stream of a database going until its context
// ends, reconnecting with backoff, and drives a Sink: Invalidate with the tables each committed
// transaction wrote, Suspend while the stream is down or more than MaxLag behind (no answer is
// served or kept from the cache then), Resume once it has caught up with where the origin was
// when it reconnected. Two sources feed it:
//
//   - PostgreSQL (postgres.go): logical replication with the pgoutput plugin (jackc/pglogrepl)
//     from a publication FOR ALL TABLES (the operator makes it), through a named replication
//     slot created if missing.
//
//   - MySQL and MariaDB (mysql.go): the row-based binlog (go-mysql's replication package),
//     as a replica with its own server id, resuming from GTID positions.
//
//     origin                          Run (one goroutine per database)           Sink
//     │ connect, check wal_level / binlog_format, privileges ──────────────────────── setup error: TTL
//     │<── START_REPLICATION / COM_BINLOG_DUMP_GTID                              Suspend (until caught up)
//     │─── changes of a transaction, commit ──>│ tables written ──> Invalidate(db, tables)
//     │─── keepalive / heartbeat ─────────────>│ caught up with the target ──> Resume
//     │    connection lost, or MaxLag behind   │ ──────────────────────────────> Suspend, reconnect
//
// Invalidations go to the Sink through a queue (invalidations.go): the stream reads on while
// one is on its way to the edges, and what committed meanwhile goes out as one, so a pool a
// round trip from its edges is not held to one transaction per round trip. A position counts
// as reached only once everything before it is invalidated.
//
// Beside the stream, a probe (probe.go) reads the origin's position every second on a
// connection of its own: the stream's lag in bytes, and a mark the stream must reach within
// MaxLag. One it does not reach suspends the database (the stream then reconnects), so that a
// stream slow to decode is caught before a late commit shows it; until then the stream tells
// the Sink until when it vouches for the database's answers (Sink.CurrentUntil), and the cache
// counts any answer served after that as a read served while behind.
//
// A setup problem the operator must fix (wal_level is not logical, the user lacks REPLICATION,
// no publication, binlog_format is not ROW) is reported once, as a warning naming the fix, and
// Run returns ErrUnavailable: the database keeps its TTL caching. Anything else (the origin
// restarted, the replication connection killed) suspends caching and retries.
//
// Each transaction's times along the way (its commit, when the origin sent it, when the stream
// read it, when every cache had dropped it) are exported as slipstream_change_stream_delay_seconds,
// so that a lag can be told apart: the origin's, the network's and scheduling's, the Sink's.
//
// It keeps no state but the stream's position; it never logs a password.
package changes

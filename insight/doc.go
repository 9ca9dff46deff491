// Package insight keeps the edge's query insights: every unit of work a client sends is
// reduced to its shape (pg_query's fingerprint for PostgreSQL, the TiDB parser's digest for
// MySQL) and counted in a bounded table of shapes: calls, total and percentile latency, rows,
// and how the result cache treated it (hit, or why it was not cached).
//
// Start reading at Recorder: the proxy calls Observe once per unit (a PostgreSQL unit up to its
// ReadyForQuery, a MySQL command and its answer), from the client's session goroutine; the admin
// console (SHOW QUERIES, SHOW STATS, SHOW CACHE), /api/queries and the dashboard read Shapes,
// DBTotals (per protocol and database) and Series.
//
// The table holds at most Config.MaxShapes shapes; a new shape past that replaces the one
// with the least total time, so the top shapes by time stay (a shape that was evicted and
// comes back starts again from zero). Per database totals and a per-second ring of the last
// two minutes are kept apart from the table, so evictions never lose throughput numbers.
// Prometheus gets only aggregates (per database, per cache status): never a label per shape.
//
// Concurrency: every method is safe for concurrent use. Observe takes one mutex for a few
// counter updates; fingerprints are remembered by query text (a bounded map), so a query
// text seen before costs no parse.
package insight

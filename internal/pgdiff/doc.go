// Package pgdiff is a differential wire harness for PostgreSQL: it sends the same script of
// frontend messages to the real database and to Slipstream, and compares the backend messages
// that come back, one by one. It is used by tests only (cmd/slipstream runs the scripts against
// `slipstream serve` and against `slipstream edge` + `slipstream pool` over the QUIC tunnel,
// and fuzzes generated pipelines the same way); the product never imports it.
//
// Start reading at Script (script.go): a small text format, one frontend message per line,
// kept in scripts/*.pgs and embedded (Scripts). Run (run.go) plays a script on one server and
// returns its Transcript: one line per backend message, normalised by describe (describe.go).
// Compare (compare.go) reports the first line where two transcripts differ.
//
//	test                     Run (direct)                 PostgreSQL 15
//	 │ Script ──────────────> │ startup (pgconn), Hijack ─────> │
//	 │                        │ Parse, Bind, …, Sync ─────────> │
//	 │                        │ <──── backend messages until    │
//	 │                        │       the tracker has them all  │
//	 │ <── Transcript ─────── │
//	 │ Script ──────────────> Run (through Slipstream) ─> edge ─> pool ─> PostgreSQL 15
//	 │ <── Transcript
//	 │ Compare(direct, slipstream): the first differing line, or nil
//
// When to stop reading. The harness never waits for silence: after each message that makes
// PostgreSQL answer (Sync, Flush, Query, CopyDone, CopyFail, Terminate) it reads until every
// message sent so far has had its answer (tracker.go), exactly as PostgreSQL defines them:
// ParseComplete for Parse, ParameterDescription and RowDescription or NoData for Describe of a
// statement, CommandComplete, EmptyQueryResponse, PortalSuspended or an error for Execute,
// ReadyForQuery for Sync and Query; after an error in the extended protocol everything up to
// the next Sync is skipped. A server that does not deliver what is due within the read timeout
// (a hung pipeline) gets a TIMEOUT line in its transcript.
//
// Justified differences: describe leaves out what legitimately differs between two
// connections to the same database, and nothing else:
//   - BackendKeyData (the process id and secret key): the edge hands out its own, so that a
//     CancelRequest reaches the edge; the harness never prints it.
//   - The order of the ParameterStatus messages at startup: the transcript lists them sorted.
//     Their values are compared.
//   - The File, Line and Routine fields of ErrorResponse and NoticeResponse: the PostgreSQL
//     source position of an error, which says nothing to a client.
//   - The process id in NotificationResponse (the origin backend's, not the edge's key).
//   - Object identifiers of user objects (OID >= 16384) in RowDescription and
//     ParameterDescription, and the name of each run's own schema: every run creates its own
//     schema (search_path set at startup), so that both runs can create the same tables.
//     A Query's text may say $SCHEMA for that name, for what the whole cluster shares: a
//     script's LISTEN channel is its run's own, so two runs at once never hear each other.
//
// Concurrency: a Run belongs to one goroutine; Scripts, Parse and Generate are safe anywhere.
package pgdiff

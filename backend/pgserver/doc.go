// Package pgserver is the PostgreSQL server side of the databases Slipstream hosts itself (d1,
// kv), as package mysqlserver is their MySQL side: the startup exchange, message framing with
// bounded lengths, the session's run-time parameters (SET, RESET, SHOW and set_config change
// Settings; ParameterStatus follows a reported one), the extended protocol's statements and
// portals by name, skipping to Sync after an error, and ErrorResponse with real SQLSTATEs. What
// a statement does is the backend's: a session hands it every Query, Parse, Bind and Execute
// through Handler, Stmt and Portal.
//
// Start reading at Serve (serve.go):
//
//	client (pgconn / pool)               Serve                           Handler
//	 │ SSLRequest / GSSENCRequest ──────>│ 'N': the edge terminates TLS     │
//	 │ CancelRequest ───────────────────>│ Config.Cancel(pid, secret), close│
//	 │ StartupMessage user=… ───────────>│ Settings from the packet         │
//	 │                                   │ Start ──────────────────────────>│ open storage
//	 │<── AuthenticationOk, ParameterStatus…, BackendKeyData, Ready(I)      │
//	 │ Query "…" ───────────────────────>│ Query ──────────────────────────>│ results appended
//	 │<── …, ReadyForQuery(Status) ──────│                                  │
//	 │ Parse S1 ────────────────────────>│ Prepare ────────────────────────>│ Stmt, kept as S1
//	 │ Bind S1 → P, Describe P ─────────>│ checked; Bind ──────────────────>│ Portal, kept as P
//	 │ Execute P, Sync ─────────────────>│ Portal.Execute; Sync ───────────>│ rows, tags
//	 │<── ParseComplete, BindComplete, RowDescription, DataRow…, C, Ready   │
//
// The session statements (statements.go) are read here for every backend, with the lexer of
// PostgreSQL's text (lex.go) that kv's matcher reads its statements with too; Conn.RunSession
// answers SET, RESET, SHOW and set_config from Settings. A backend classifies a statement
// first (d1 with its SQLite lexer) and keeps what touches its transactions: SET LOCAL, SET
// TRANSACTION.
//
// Output is appended to Conn.Out (the Append functions, or AppendMsg for any pgproto3 message)
// and written at ReadyForQuery, at Flush, and whenever a result streams past 32 KiB (the
// client's reading pace, through TCP or pipe backpressure, then sets the query's). A message
// body is valid until the next message is read; what a backend keeps, it copies.
//
// A message that doesn't frame or decode, or one larger than Config.MaxMessage, ends that
// session with FATAL 08P01; a failed statement is an ERROR and the session goes on. Client
// text never comes from an internal error: a Handler maps its failures to an Error (Failed).
//
// Concurrency: a session is one goroutine; a Handler, its Stmts and Portals are called from it
// only. Ending Serve's context closes the connection, which unblocks a read; the session
// recovers from a panic in a Handler with FATAL XX000, so one client can't end the process.
//
// The package authenticates nobody (the edge did, or the listener is loopback) and knows
// nothing of the edge, the pool, caches or storage.
package pgserver

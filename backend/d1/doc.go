// Package d1 serves D1-style databases, SQLite files, over the PostgreSQL wire protocol, so that
// a D1 database sits behind the pool like any origin: the pool dials it with pgconn, completes
// the startup handshake and then forwards raw protocol messages to it.
//
// Start reading at DB (db.go): Open a file, then Dial (an in-memory connection, usable as
// pgconn.Config.DialFunc) or ServeConn (any net.Conn) start a session (session.go) on a SQLite
// connection of its own. Package pgserver runs the PostgreSQL protocol (startup, framing,
// settings, statements and portals by name, errors); the session is its Handler: what SQLite
// runs, and the transaction rules below. The SQL is SQLite's dialect, as in Cloudflare D1;
// PostgreSQL's session statements that drivers and the pool send (SET, RESET, SHOW, DISCARD
// ALL, set_config, BEGIN with options) are answered by the session itself (simple.go).
//
//	client (pgconn / pool)              session                        SQLite
//	 │ StartupMessage                    │ open connection (WAL,          │
//	 │──────────────────────────────────>│ foreign_keys, synchronous=FULL)│
//	 │<── AuthenticationOk, ParameterStatus…, BackendKeyData, Ready(I)    │
//	 │ Parse S1 "… $1 …"                 │ prepare, infer $N types ──────>│
//	 │ Bind S1 → portal, Execute, Sync   │ bind, step… ──────────────────>│
//	 │<── ParseComplete, BindComplete, DataRow…, CommandComplete, Ready(I)│
//	 │ Query "BEGIN; INSERT …; COMMIT"   │ one statement at a time,       │
//	 │                                   │ split by SQLite's own tail     │
//	 │<── CommandComplete ×3, ReadyForQuery(I)                            │
//
// The MySQL protocol (mysql.go): DialMySQL and ServeMySQL start a session of package
// mysqlserver, which answers MySQL's session statements itself and runs the rest here, on a
// SQLite connection of the session's own, with MySQL's transaction rules (autocommit, BEGIN
// committing an open transaction, a failed statement leaving it open) and MySQL column types
// and error numbers (mysql_types.go).
//
// Types: a result column's type comes from its declared type (INTEGER int8, REAL float8, TEXT
// text, BLOB bytea, BOOLEAN bool) or, for an expression, from its first value; a parameter's
// from the Parse message or, when the client left it open, from the column it is compared with
// or inserted into (params.go). Errors carry SQLSTATEs from one table (errors.go).
//
// Transactions: BEGIN takes SQLite's write lock at once (BEGIN IMMEDIATE) unless it says READ
// ONLY, because a deferred transaction that reads and then writes can't wait for another writer
// and would fail where PostgreSQL waits; so one writing transaction runs at a time, and readers
// never wait. The writes of a multi-statement query or of an extended batch up to Sync form an
// implicit transaction, rolled back whole on error, as in PostgreSQL. A failed transaction
// refuses everything but ROLLBACK (25P02) and reports status 'E'.
//
// Durability: WAL with synchronous=FULL, so a commit that was acknowledged is on disk and
// survives kill -9 and power loss.
//
// Concurrency: any number of sessions run at once, each on its own goroutine and SQLite
// connection; writers wait for each other up to a busy timeout instead of failing. A session
// touches nothing shared but the DB's session table (for CancelRequest). Close ends every
// session and waits for them.
//
// D1's REST API (httpapi.go): databases are managed through a Catalog (catalog.go, whose Attach
// and Detach hooks let the caller serve a database created through the API at once), queries
// run on SQLite connections of their own (exec.go), and export and import move SQL dumps
// (dump.go, transfer.go).
//
// The package knows nothing of the edge, the pool or caches, and authenticates nobody over the
// wire protocols: that is the edge's job. The REST API checks a bearer token itself, and calls
// HTTPConfig.Invalidate after a request that may have written, for the edge's cache.
package d1

// Package kv serves KV namespaces, Workers KV style, as SQL: each namespace is a SQLite file
// with one table,
//
//	kv(key text primary key, value bytea, metadata json, expiration bigint)
//
// served over the PostgreSQL wire protocol so that it sits behind the pool like any origin, and
// over Workers KV's REST API (httpapi.go: namespaces through a Catalog, catalog.go; values,
// metadata and listings, httpvalues.go; bulk operations, httpbulk.go). expiration is in unix seconds; a key is gone from
// the second it names.
//
// Start reading at Namespace (namespace.go): Open a file, then Dial (an in-memory connection,
// usable as pgconn.Config.DialFunc) or ServeConn (any net.Conn) start a session (session.go),
// the Handler of package pgserver, which runs the PostgreSQL protocol (startup, framing,
// settings, statements and portals by name, errors). A session runs only the statements a KV
// store can answer, matched by a small strict reader (parse.go, on pgserver.Lex) rather than
// handed to SQLite:
//
//	SELECT key, value, metadata, expiration FROM kv WHERE key = $1      a get (any columns, or *)
//	SELECT key FROM kv WHERE key LIKE 'user:%' AND key > $1              a listing by prefix,
//	       ORDER BY key LIMIT 100                                        from a cursor, in pages
//	INSERT INTO kv (key, value, metadata, expiration_ttl) VALUES (...)  a put that overwrites
//	DELETE FROM kv WHERE key = $1                                        a delete
//
// and the session statements drivers and the pool send (SET, RESET, SHOW, set_config, DISCARD,
// DEALLOCATE; statements.go). Anything else is refused with SQLSTATE 0A000 and a message
// listing what is supported. There are no transactions: BEGIN is refused, COMMIT and ROLLBACK
// warn and do nothing, and each statement takes effect by itself (an INSERT of several rows is
// atomic).
//
//	client (pgconn / pool)              session                      SQLite (database/sql)
//	 │ StartupMessage                    │                              │
//	 │──────────────────────────────────>│                              │
//	 │<── AuthenticationOk, ParameterStatus…, BackendKeyData, Ready(I)  │
//	 │ Parse "SELECT … WHERE key = $1"   │ match; $1 is text            │
//	 │ Describe S                        │                              │
//	 │<── ParseComplete, ParameterDescription, RowDescription           │
//	 │ Bind $1='k', Execute, Sync        │ get k ──────────────────────>│
//	 │                                   │<── row; expired? delete it ──│
//	 │<── BindComplete, DataRow, CommandComplete SELECT 1, Ready(I)     │
//
// The MySQL protocol (mysql.go): DialMySQL and ServeMySQL start a session of package
// mysqlserver running the same statements, written MySQL's way (? placeholders, `identifiers`,
// literals as MySQL reads them); what isn't supported is 1235 ER_NOT_SUPPORTED_YET.
//
// Expired keys are never returned: every read compares expiration with the clock, and deletes
// the expired keys it meets (at most maxLazyDeletes per read). A listing reads storage a page at
// a time, so it streams, and pages are not one snapshot: a key put while a long SELECT runs may
// or may not appear in it, as in Workers KV's eventually consistent listings.
//
// Durability: WAL with synchronous=FULL, so an acknowledged put survives kill -9 and power loss.
//
// Concurrency: any number of sessions and HTTP requests run at once, each on its own goroutine,
// sharing the Namespace's database/sql pool; writers wait for each other up to a busy timeout.
// Close ends every session, waits for sessions and requests, and closes the file.
//
// The package knows nothing of the edge, the pool or caches, and authenticates nobody over the
// PostgreSQL protocol: that is the edge's job. The HTTP API checks a bearer token itself.
package kv

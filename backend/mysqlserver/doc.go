// Package mysqlserver is the MySQL server side of the databases Slipstream hosts itself (d1,
// kv): the connection phase, the session statements MySQL drivers and CLIs send, the status
// flags, result sets in the text and binary protocols, and error packets with real MySQL error
// numbers. What a statement does is the backend's: a session hands it every statement it
// doesn't answer itself, through Backend.
//
// Start reading at Serve (session.go). It runs go-mysql's server (v1.16.0) on the connection
// with a handler, session, that answers
//
//	SET NAMES, SET [SESSION] x = v, SET @@session.x = v, SET @u = v, SET TRANSACTION …
//	SELECT @@x [AS a], @u, DATABASE(), USER(), VERSION(), CONNECTION_ID(), LAST_INSERT_ID() … [LIMIT n]
//	SHOW WARNINGS, SHOW [SESSION] VARIABLES [LIKE 'p'], SHOW DATABASES, USE db
//	COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, COM_SET_OPTION, COM_FIELD_LIST
//
// itself (vars.go), and passes everything else, text or prepared, to the backend:
//
//	client (go-sql-driver / pool)        session (go-mysql server)         Backend
//	 │<── HandshakeV10 (native password, any password accepted)             │
//	 │ HandshakeResponse41 user, db ───>│ UseDB(db): only the database's name
//	 │<── OK (status: AUTOCOMMIT, NO_BACKSLASH_ESCAPES)                      │
//	 │ COM_QUERY "SET NAMES utf8mb4" ──>│ answered here                     │
//	 │<── OK                            │                                   │
//	 │ COM_STMT_PREPARE "… WHERE id = ?"│ Prepare ─────────────────────────>│
//	 │<── PREPARE_OK, param and column definitions                          │
//	 │ COM_STMT_EXECUTE [7] ───────────>│ Execute(Results, args) ──────────>│
//	 │<── column count, definitions, EOF, binary rows…, EOF (status) <──────│ rows as they come
//
// Status flags: every OK and EOF carries SERVER_STATUS_AUTOCOMMIT and SERVER_STATUS_IN_TRANS as
// they are after the statement (the MySQL pool leases a connection per transaction by reading
// them), and SERVER_STATUS_NO_BACKSLASH_ESCAPES: string literals here never treat a backslash
// as an escape (SQLite's rule), and the flag tells drivers that interpolate parameters to
// escape quotes by doubling them.
//
// Errors: a backend reports a failure with a SQLSTATE, as its PostgreSQL session would; Error
// maps it to a MySQL error number and SQLSTATE from one table (errors.go).
//
// Concurrency: a session is one goroutine; Backend and Stmt are called from it only.
//
// The package authenticates nobody (the edge did, or the listener is loopback) and knows
// nothing of the edge, the pool or caches.
package mysqlserver

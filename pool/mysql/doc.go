// Package mysqlpool is the pool side of MySQL and MariaDB databases: it owns the connections to
// one origin and runs the pool side of every client session, leasing an origin connection per
// transaction, making it look like the client's own (current database, session settings, user
// variables, prepared statements) and forwarding raw packets both ways. It mirrors package pool
// (PostgreSQL) in shape; the tunnel contract for MySQL is in the tunnel package's Origin.
//
// Start reading at Session: Send takes one client command, Recv hands back its response. Pool
// (pool.go) dials the connections and package pool's Slots keeps them, keyed by the client flags
// and collation each was opened with: a bounded number per database, handed out in FIFO order,
// recycled when idle or old, dropped when broken. The pool runs the connection phase itself, on
// mysqlwire's codec (login.go: greeting, TLS, handshake response, authentication with a
// password, or with SHA1(password) for a role of a database that lets any user in, roles.go);
// after that it reads and writes packets itself and parses responses only as far as it must to
// know where they end (response.go).
//
//	edge                            Session                         origin connection
//	 │ Send(COM_STMT_EXECUTE id=1)    │ lease (queue if all busy)       │
//	 │───────────────────────────────>│ owes a reset? other settings?   │
//	 │                                │ COM_RESET_CONNECTION, INIT_DB,  │
//	 │                                │ SET ... (one round trip) ──────>│
//	 │                                │ statement 1 not prepared here:  │
//	 │                                │ COM_STMT_PREPARE sql ──────────>│ id 7
//	 │                                │ long data, EXECUTE id=7 ───────>│
//	 │ Recv                           │<── columns, rows, EOF/OK        │
//	 │<── columns, rows, EOF/OK ──────│ IN_TRANS clear, autocommit on,  │
//	 │                                │ no cursor, not pinned: release  │
//
// Sequence ids pass through untouched: every command the pool adds is a command of its own,
// answered before the client's goes out, so the origin numbers its answer to the client's
// command exactly as the client expects. Answers the pool makes up (errors, COM_PING or
// COM_RESET_CONNECTION without a lease) take the sequence id after the command's last packet.
//
// Format. Origin connections are kept per set of the client flags that shape answers
// (CLIENT_DEPRECATE_EOF, FOUND_ROWS, MULTI_STATEMENTS, MULTI_RESULTS, PS_MULTI_RESULTS,
// SESSION_TRACK, LOCAL_FILES, QUERY_ATTRIBUTES, IGNORE_SPACE, and MariaDB's
// MARIADB_CLIENT_EXTENDED_METADATA, which the pool asks for in its handshake response over
// plain TCP only, and the profile's ext_capabilities offers it to the edge only then) and
// handshake collation, so the origin answers each client in its own format. An origin that does not take
// CLIENT_DEPRECATE_EOF (go-mysql's server, behind d1 and kv) is translated for clients that
// asked for it, and the other way round (translate.go): EOF packets after definitions dropped
// or added, final EOF and OK converted, sequence ids renumbered.
//
// Leases. A session holds its connection while the origin's status says a transaction is open
// (SERVER_STATUS_IN_TRANS) or autocommit is off, while a cursor is open, from XA START to XA
// COMMIT, after SET TRANSACTION until the next command (which starts the transaction it
// shapes), and for up to 250 ms after warnings or SQL_CALC_FOUND_ROWS (SHOW WARNINGS and
// FOUND_ROWS() ask the connection about its last statement).
//
// State. A connection carries a fingerprint of the settings replayed on it (the SET statements
// themselves) and its current database; a session whose fingerprint differs resets it
// (COM_RESET_CONNECTION) when it takes it and replays its own, so sessions with the same
// settings (an application's pool, all alike) neither reset nor replay. Statements the pool
// cannot describe (CALL, SET TRANSACTION, SET ROLE) leave the connection dirty: it is reset when
// released (the answer is read by its next user). User variables assigned from expressions are
// read back when the connection is released and replayed as constants (past 64 KiB they pin).
// LOCK TABLES, GET_LOCK, CREATE TEMPORARY TABLE, SQL-level PREPARE and HANDLER pin the session to
// its connection until it ends; the connection is then reset before reuse.
// What each statement does to its session is read by classify (AppendMySQLEffects, on every
// COM_QUERY, allocation-free for the common statement); the session's assignments and their
// fingerprint are a sessionstate.MySQLSettings (Session.state).
//
// Origins that refuse COM_RESET_CONNECTION (probed on the first connection) pin every session
// that changes its state, and close its connection after.
//
// Statements. The client sees ids the session hands out; each origin connection keeps its own
// statements by database and text (shared by the sessions that use it) and the session
// prepares a statement again on a connection that lacks it, in the database it was first
// prepared in. The pool counts the client statements using each text (stmtrefs.go): one no
// client uses any more is closed on every connection that has it before that connection's
// next command (at once on the connection the closing session holds), and a connection holds
// at most its share of the origin's max_prepared_stmt_count (read with the first connection;
// at most 256), least recently used closed first, so clients never meet error 1461 through
// the pool where they would not direct. COM_STMT_SEND_LONG_DATA is buffered and
// replayed just before the execute; a statement whose client relies on parameter types sent
// earlier gets them again on a connection that holds another's.
//
// Catalog. With its first connection, before taking the socket over, the pool reads from
// information_schema which relations of the origin URL's database change together (views and
// the tables they read, cascading foreign keys, tables with triggers: related.go) for the
// profile; a statement that creates, alters, renames or drops a table, view, trigger or database
// has it read again, on a connection of its own, before its answer's last packet is handed over.
//
// Answers the pool gives itself: COM_PING and COM_RESET_CONNECTION without a lease, COM_STMT_*
// naming an unknown statement, SELECT LAST_INSERT_ID() (the session's own id, from its OK
// packets: the connection may hold another session's), COM_CHANGE_USER (which an edge forwards
// once it has authenticated the user: a fresh session in the packet's database), COM_SET_OPTION
// without a lease (multi-statements on or off: the session's key changes, and a held
// connection is switched with it). Replication commands are refused with ERR 1047.
//
// Concurrency: Send and Recv may run on two goroutines; Cancel and Close on any. The session's
// mutex guards the lease, the command in flight and the session state; Recv does not hold it
// while blocked on the origin. An origin connection belongs to at most one session at a time.
//
// The package never accepts client connections and knows nothing of caches or the edge.
package mysqlpool

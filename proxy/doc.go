// Package proxy is the edge: it accepts client connections, runs their startup and
// authentication itself, and then pumps each client's messages to the pool side through a
// link.Stream and the answers back.
//
// Start reading at Server.Serve, then serveConn (session.go), which is one client's whole
// life: handshake deadline, startup (startup.go), authentication, the session's run loop, and
// closing both sides exactly once. Connection setup never waits on the origin once the pool has
// learned the origin's profile: the edge answers with the profile's ParameterStatus values and
// hands out its own BackendKeyData (cancel.go). Each batch of client messages then goes through
// the query pipeline, exchange (exchange.go: lookup, prepareSend, forward, sink, settle, keep;
// docs/architecture.md follows one query through it).
//
//	client                         edge (serveConn, run)            link.Stream
//	 │ SSLRequest ───────────────────>│
//	 │<────────────────────────── 'S' │ TLS handshake, new reader
//	 │ StartupMessage ───────────────>│ database known? else 3D000
//	 │<────────── AuthenticationSASL  │ SCRAM-SHA-256 (or md5, password)
//	 │ SASLInitialResponse/Response ─>│ wrong password: 28P01
//	 │<── AuthenticationOk, ParameterStatus*, BackendKeyData, ReadyForQuery
//	 │ Query / Parse…Sync ───────────>│ exchange: Send ─────────────────>│
//	 │<───────────────────── answers  │   Recv while Pending <───────────│
//	 │ Terminate ────────────────────>│ Close ──────────────────────────>│
//
// A database with AnyRole checks each role against the verifier the pool side looked up, kept
// in memory for AuthCacheTTL (roles.go; MySQL's mysql_native_password in mysqlroles.go); failed
// logins are slowed per client address (authguard.go).
//
// Concurrency: a session works in turns on one goroutine, as PostgreSQL itself does: it reads a
// batch, sends it, and writes the answers due before it reads the client again. A session
// pinned to its origin connection (LISTEN...) may receive at any time: from then on a second
// goroutine, writePump, receives and writes to the client while the first keeps reading it. A
// fatal error found by either goes through the session's fatal slot and is written once. A
// panic in a session is recovered and ends that session only.
//
// MySQL clients have a listener of their own (ServeMySQL, mysql.go) and a simpler session
// (mysqlsession.go): mysqlwire.Accept runs the connection phase from the origin profile, then
// one goroutine reads a command, sends it and writes its answer, in turns, as a MySQL server
// does. COM_PING is answered at the edge, and KILL [QUERY] takes the edge's own connection ids
// (mysqlkill.go), as CancelRequest takes its own BackendKeyData. Databases are served on the
// listener of their Database.Protocol only. A cached MySQL database's reads (COM_QUERY and
// prepared COM_STMT_EXECUTE outside transactions) are answered from the cache with no round
// trip, and writes invalidate before their answer is written (mysqlcache.go), with the same
// lookup as PostgreSQL units (cachelookup.go).
//
// A session's state (settings, prepared statements, transaction status, current database,
// variables) is a sessionstate.PG (session.state) or sessionstate.MySQL (mysqlSession.state),
// followed while the session's writes or cache need it; the cache's own fields (cacheState,
// mysqlCache) hold only the keys' base, the writes to invalidate and the answer in flight. The
// keys read the state (plan, keyPrefix), and so do a read sent again over another pool
// (retryElsewhere, restoreMySQL), a refresh and a handover.
//
// Over the QUIC tunnel the pool side keeps a second cache, shared by its edges (poolend): the
// edge hints each unit it misses whose answer may be kept (key, tables, max age), so that the
// pool side answers it from another edge's read when it can, and the session reports its
// writes even for a database not cached here. What a stream's pool end does is its Caps
// (link.Caps), not its type.
//
// Shutting down and reloading (drain.go, catalog.go): Drain closes the listeners and ends
// each session at its next request boundary, outside a transaction, with 57P01 (MySQL
// ER_SERVER_SHUTDOWN), as PostgreSQL's own shutdown does; Serve returns once the last session
// has ended. SetDatabases swaps the databases new clients may log in to, and DrainDatabase
// ends the sessions of one that a reload removed, the same way. Cancelling Serve's context
// remains the immediate stop.
//
// Upgrading (handover.go): HandOver is Drain for a new process that takes over the listening
// sockets; a plaintext session whose state the edge follows, PostgreSQL or MySQL
// (handover_mysql.go), moves to it at its next boundary (its connection and a HandedSession,
// through the caller's Handoff), and the new process's Adopt serves it from there. The others
// drain.
//
// The edge never talks to a database directly: all of that is behind the tunnel.
package proxy

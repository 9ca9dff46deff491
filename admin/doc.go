// Package admin is Slipstream's admin console: the virtual database "slipstream", also
// answering as "pgbouncer", on the PostgreSQL listener, speaking PgBouncer 1.24's console
// language so that psql, pgbouncer_exporter, Datadog's and pgwatch's PgBouncer checks work
// against Slipstream unchanged.
//
// Start reading at Console: the edge (package proxy) authenticates a console client with
// Credentials and hands it to ServePG, which reads simple Query messages (the console speaks no
// extended protocol, as PgBouncer's) and answers each command (command.go):
//
//	client                       edge (proxy)                  Console
//	 │ StartupMessage db=pgbouncer ─>│ Credentials(user)
//	 │<──────────── SCRAM (or trust) │
//	 │                               │ ServePG ─────────────────────>│
//	 │<─ AuthenticationOk, ParameterStatus*, BackendKeyData, ReadyForQuery
//	 │ Query "SHOW POOLS;" ────────────────────────────────────────>│ RowDescription,
//	 │<────────────────────────── DataRow*, CommandComplete, ReadyForQuery
//	 │ Query "PAUSE app;" ─────────────────────────────────────────>│ waits for the
//	 │<────────── CommandComplete "PAUSE", ReadyForQuery (transactions in flight ended)
//
// SHOW commands have PgBouncer 1.24's column names, types and order (show.go), with every
// database, PostgreSQL's and MySQL's; SHOW CACHE, SHOW QUERIES, SHOW TUNNELS and SHOW PLACEMENT
// are Slipstream's own. Commands that change something (PAUSE, RESUME, DISABLE, ENABLE,
// RECONNECT, KILL, KILL_CLIENT, SUSPEND, WAIT_CLOSE, RELOAD, SHUTDOWN, SET) need an admin user;
// stats users may only SHOW. Errors are ERROR 08P01, as PgBouncer's. SET changes one of the
// Settings that has a Set until Reloaded (settings.go); SHOW CONFIG shows its value meanwhile.
//
// Each command (serve, edge, pool) builds its console from what it knows: serve and a pool give
// their pools (package pool and pool/mysql); an edge, whose origin connections are the pool's,
// gives a RemotePool per database, which has no connections and refuses PAUSE; only the
// processes clients connect to (serve, edge) have an edge (Attach) and query insights.
//
// MySQL clients reach the same console on mysql_listen (ServeMySQL, mysql.go): the edge runs
// the handshake against Credentials, then each COM_QUERY is one command, answered as a
// text-protocol result set, an OK or an ERR 1105.
//
// The same figures are served over HTTP (http.go): /api/queries, /api/overview and the
// dashboard's page (package dashboard), behind the admin credentials when the HTTP listener
// is not on loopback.
//
// Concurrency: one goroutine per console client (the edge's); every source the console reads
// (pools, edge, cache, insight Recorder) is safe for concurrent use.
package admin

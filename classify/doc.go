// Package classify reads SQL text for what the proxy and the pool must know about a statement
// before it runs: whether it changes session state that has to follow a client from one origin
// connection to the next (SET, RESET, DISCARD), and whether it needs one origin connection for
// the rest of the session (LISTEN, session advisory locks, temporary tables, WITH HOLD cursors,
// SQL-level PREPARE).
//
// Start reading at Session. It works on a lexer that knows PostgreSQL's quoting (strings,
// escape strings, quoted identifiers, dollar quotes, nested comments), so text inside literals
// never counts; it allocates nothing for statements that have no session effect, which is nearly
// every statement on the hot path.
//
// Classify (statement.go) is the cache's view of a statement, from a real parser (libpg_query
// through pg_query_go, cgo): its kind (read, write, DDL, transaction control, session state,
// utility), the tables it reads and writes, the functions it calls and its locking clauses.
// Statement.Cacheable decides, with a volatility oracle (BuiltinVolatility, or the origin's
// pg_proc), whether its result may be cached; a parse failure counts as a write that may touch
// anything.
//
// ClassifyMySQL (mysql.go) is the same view of MySQL text, from the TiDB parser that go-mysql
// brings, with MySQLVolatility as its oracle for built-in functions.
//
// AppendMySQLEffects (mysqleffect.go) is the pool side's view of MySQL text: what each
// statement does to its session (USE, SET assignments as source text to replay, user variables,
// pins, XA), on a byte lexer of its own (mysqllexer.go) rather than the TiDB parser, for the
// reasons mysqleffect.go gives; MySQLLastInsertIDQuery recognises SELECT LAST_INSERT_ID().
//
// It does no I/O and keeps no state: every function is safe for concurrent use.
package classify

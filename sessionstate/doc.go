// Package sessionstate is the one home of a client session's state, per protocol: what a
// session set and holds that later answers depend on, and the rules that change it. Each end of
// Slipstream keeps an instance of the same model: the edge (package proxy) follows a session to
// build cache keys and to set it up again on another pool side (a read sent again after a
// tunnel loss, a refresh, a handover); the pool side (packages pool and pool/mysql) follows it
// to replay it on each origin connection it leases. Nothing else keeps a copy.
//
// PostgreSQL (pg.go, settings.go): PG is a session's transaction status, its session-level
// settings (Settings: the SETs in force, one per parameter, and those staged until the batch or
// transaction that made them succeeds), its prepared statements as the client prepared them,
// and whether it changed state nobody can follow (Dirty). The pool side uses Settings alone:
// its prepared statements are a map onto origin connections of its own (pool/prepared.go).
//
// MySQL (mysql.go, mysqlsettings.go): MySQL is a session's current database (USE,
// COM_INIT_DB), its SET NAMES, the statements that set session variables in the order the
// origin said OK to them, and its prepared statements, as the edge follows them; the pool side
// replays the same variables as assignments by name (MySQLSettings, from
// classify.AppendMySQLEffects), since it must carry them on every connection it leases and
// keep the last of each.
//
// One package for both protocols, not one each: the two models are small, share the idea of a
// change staged until its answer says it happened, and every user imports both ends' types
// (proxy serves both protocols). Facts come from package classify's results (classify.Setting,
// classify.Effect, classify.MySQLSession): this package reads no SQL itself.
//
// Start reading at PG. Nothing here is safe for concurrent use: an instance belongs to the
// goroutine (or the mutex) of the session that owns it.
package sessionstate

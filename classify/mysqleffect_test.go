package classify

import (
	"reflect"
	"strings"
	"testing"
)

func TestMySQLEffectsFindWhatStatementsDoToTheSession(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want []MySQLEffect
	}{
		{"SELECT 1", []MySQLEffect{{}}},
		{"  (select * from t where a = 'x') LOCK IN SHARE MODE", []MySQLEffect{{}}},
		{"SELECT RELEASE_LOCK('x')", []MySQLEffect{{}}},
		{"select @a := 1", []MySQLEffect{{Vars: []string{"a"}}}},
		{"SELECT 1; SET @x = 2", []MySQLEffect{{}, {Sets: []MySQLAssignment{{Key: "@x", Text: "@x = 2"}}}}},
		{"select 'a;b'; select 2 -- ; SET @x = 1\n", []MySQLEffect{{}, {}}},
		{"USE `my db`", []MySQLEffect{{Use: "my db"}}},
		{"use Shop", []MySQLEffect{{Use: "Shop"}}},
		{"SET NAMES utf8mb4 COLLATE utf8mb4_bin", []MySQLEffect{{Sets: []MySQLAssignment{{Key: "names", Text: "NAMES utf8mb4 COLLATE utf8mb4_bin"}}}}},
		{"SET CHARACTER SET latin1", []MySQLEffect{{Sets: []MySQLAssignment{{Key: "names", Text: "CHARACTER SET latin1"}}}}},
		{"SET @@session.sql_mode = 'ANSI', time_zone = '+00:00'", []MySQLEffect{{Sets: []MySQLAssignment{
			{Key: "sql_mode", Text: "@@SESSION.sql_mode = 'ANSI'"}, {Key: "time_zone", Text: "@@SESSION.time_zone = '+00:00'"}}}}},
		{"SET SESSION wait_timeout = 5, GLOBAL max_connections = 9, x = 1", []MySQLEffect{{Sets: []MySQLAssignment{
			{Key: "wait_timeout", Text: "@@SESSION.wait_timeout = 5"}}}}},
		{"SET @@global.max_connections = 9", []MySQLEffect{{}}},
		{"SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')", []MySQLEffect{{Sets: []MySQLAssignment{
			{Key: "sql_mode", Text: "@@SESSION.sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"}}}}},
		{"SET @x = 42, @`y z` := 'a', @n = -1", []MySQLEffect{{Sets: []MySQLAssignment{
			{Key: "@x", Text: "@x = 42"}, {Key: "@y z", Text: "@`y z` = 'a'"}, {Key: "@n", Text: "@n = -1"}}}}},
		{"SET @x = NOW()", []MySQLEffect{{Vars: []string{"x"}}}},
		{"SELECT @a := MAX(id) FROM t", []MySQLEffect{{Vars: []string{"a"}}}},
		{"SELECT id INTO @a, @b FROM t", []MySQLEffect{{Vars: []string{"a", "b"}}}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", []MySQLEffect{{Dirty: true, HoldTx: true}}},
		{"SET SESSION TRANSACTION READ ONLY, ISOLATION LEVEL READ COMMITTED", []MySQLEffect{{Sets: []MySQLAssignment{
			{Key: "tx access", Text: "SET SESSION TRANSACTION READ ONLY", Alone: true},
			{Key: "tx isolation", Text: "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", Alone: true}}}}},
		{"SET GLOBAL TRANSACTION READ ONLY", []MySQLEffect{{}}},
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", []MySQLEffect{{}}},
		{"LOCK TABLES t READ", []MySQLEffect{{Pin: "lock_tables"}}},
		{"select get_lock('x', 1)", []MySQLEffect{{Pin: "get_lock"}}},
		{"CREATE TEMPORARY TABLE t (i int)", []MySQLEffect{{Pin: "temporary_table"}}},
		{"DROP TEMPORARY TABLE t", []MySQLEffect{{}}},
		{"CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`a`@`%` VIEW v AS SELECT * FROM t", []MySQLEffect{{Catalog: true}}},
		{"create definer = CURRENT_USER trigger tr after insert on t for each row update u set n = n + 1",
			[]MySQLEffect{{Catalog: true}}},
		{"ALTER TABLE t ADD FOREIGN KEY (p) REFERENCES p (id) ON DELETE CASCADE", []MySQLEffect{{Catalog: true}}},
		{"DROP VIEW IF EXISTS v; RENAME TABLE a TO b", []MySQLEffect{{Catalog: true}, {Catalog: true}}},
		{"CREATE INDEX i ON t (a)", []MySQLEffect{{}}},
		{"PREPARE s FROM 'SELECT 1'", []MySQLEffect{{Pin: "prepare"}}},
		{"CALL p()", []MySQLEffect{{Dirty: true}}},
		{"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", []MySQLEffect{{Hold: true}}},
		{"XA START 'x'", []MySQLEffect{{XA: 1}}},
		{"xa rollback 'x'", []MySQLEffect{{XA: -1}}},
		{"/*!40101 SET NAMES utf8 */", []MySQLEffect{{Sets: []MySQLAssignment{{Key: "names", Text: "NAMES utf8"}}}}},
		{"/* SET NAMES utf8 */ SELECT 1", []MySQLEffect{{}}},
	} {
		if got := mySessionEffects(tc.sql); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("mySessionEffects(%q)\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
		if got := AppendMySQLEffects(nil, []byte(tc.sql)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AppendMySQLEffects(%q)\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
	}
}

// The common statement that does nothing to its session costs the pool no allocation.
func TestMySQLEffectsAllocateNothingForPlainStatements(t *testing.T) {
	dst := make([]MySQLEffect, 0, 4)
	for _, q := range []string{"SELECT c FROM sbtest1 WHERE id = 42", "UPDATE t SET a = 1 WHERE id = 2", "BEGIN", "COMMIT"} {
		sql := []byte(q)
		if n := testing.AllocsPerRun(100, func() { dst = AppendMySQLEffects(dst[:0], sql) }); n != 0 {
			t.Errorf("%q: %.0f allocations", q, n)
		}
	}
}

// FuzzMySQLEffects feeds the pool's reader of session effects arbitrary text: it never panics,
// a plain statement (the fast path) has no effect, and every assignment it says to replay
// names what it sets and has text to replay.
func FuzzMySQLEffects(f *testing.F) {
	for _, q := range []string{"SET @x = 1, NAMES utf8", "SET SESSION TRANSACTION READ ONLY", "USE `a``b`",
		"SELECT @a := 1", "/*!40101 SET NAMES utf8 */", "XA START 'x'", "SELECT LAST_INSERT_ID() AS `id`",
		"SET @`y z` := 'a', @n = -1", "SELECT 'a;b'; SELECT 2 -- ; SET @x = 1\n"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		effects := AppendMySQLEffects(nil, []byte(sql))
		if myPlain([]byte(sql)) && (len(effects) != 1 || !effects[0].Zero()) {
			t.Errorf("plain %q has effects %+v", sql, effects)
		}
		for _, e := range effects {
			for _, a := range e.Sets {
				if a.Key == "" || strings.TrimSpace(a.Text) == "" {
					t.Errorf("%q: assignment %+v without a key or text", sql, a)
				}
			}
		}
		MySQLLastInsertIDQuery([]byte(sql))
	})
}

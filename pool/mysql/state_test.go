package mysqlpool

import (
	"reflect"
	"testing"
)

func TestAnalyzeFindsWhatStatementsDoToTheSession(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want []effect
	}{
		{"SELECT 1", []effect{{}}},
		{"  (select * from t where a = 'x') LOCK IN SHARE MODE", []effect{{}}},
		{"SELECT RELEASE_LOCK('x')", []effect{{}}},
		{"select @a := 1", []effect{{vars: []string{"a"}}}},
		{"SELECT 1; SET @x = 2", []effect{{}, {sets: []setting{{key: "@x", text: "@x = 2"}}}}},
		{"select 'a;b'; select 2 -- ; SET @x = 1\n", []effect{{}, {}}},
		{"USE `my db`", []effect{{use: "my db"}}},
		{"use Shop", []effect{{use: "Shop"}}},
		{"SET NAMES utf8mb4 COLLATE utf8mb4_bin", []effect{{sets: []setting{{key: "names", text: "NAMES utf8mb4 COLLATE utf8mb4_bin"}}}}},
		{"SET CHARACTER SET latin1", []effect{{sets: []setting{{key: "names", text: "CHARACTER SET latin1"}}}}},
		{"SET @@session.sql_mode = 'ANSI', time_zone = '+00:00'", []effect{{sets: []setting{
			{key: "sql_mode", text: "@@SESSION.sql_mode = 'ANSI'"}, {key: "time_zone", text: "@@SESSION.time_zone = '+00:00'"}}}}},
		{"SET SESSION wait_timeout = 5, GLOBAL max_connections = 9, x = 1", []effect{{sets: []setting{
			{key: "wait_timeout", text: "@@SESSION.wait_timeout = 5"}}}}},
		{"SET @@global.max_connections = 9", []effect{{}}},
		{"SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')", []effect{{sets: []setting{
			{key: "sql_mode", text: "@@SESSION.sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"}}}}},
		{"SET @x = 42, @`y z` := 'a', @n = -1", []effect{{sets: []setting{
			{key: "@x", text: "@x = 42"}, {key: "@y z", text: "@`y z` = 'a'"}, {key: "@n", text: "@n = -1"}}}}},
		{"SET @x = NOW()", []effect{{vars: []string{"x"}}}},
		{"SELECT @a := MAX(id) FROM t", []effect{{vars: []string{"a"}}}},
		{"SELECT id INTO @a, @b FROM t", []effect{{vars: []string{"a", "b"}}}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", []effect{{dirty: true, holdTx: true}}},
		{"SET SESSION TRANSACTION READ ONLY, ISOLATION LEVEL READ COMMITTED", []effect{{sets: []setting{
			{key: "tx access", text: "SET SESSION TRANSACTION READ ONLY", alone: true},
			{key: "tx isolation", text: "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", alone: true}}}}},
		{"SET GLOBAL TRANSACTION READ ONLY", []effect{{}}},
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", []effect{{}}},
		{"LOCK TABLES t READ", []effect{{pin: "lock_tables"}}},
		{"select get_lock('x', 1)", []effect{{pin: "get_lock"}}},
		{"CREATE TEMPORARY TABLE t (i int)", []effect{{pin: "temporary_table"}}},
		{"DROP TEMPORARY TABLE t", []effect{{}}},
		{"CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`a`@`%` VIEW v AS SELECT * FROM t", []effect{{catalog: true}}},
		{"create definer = CURRENT_USER trigger tr after insert on t for each row update u set n = n + 1",
			[]effect{{catalog: true}}},
		{"ALTER TABLE t ADD FOREIGN KEY (p) REFERENCES p (id) ON DELETE CASCADE", []effect{{catalog: true}}},
		{"DROP VIEW IF EXISTS v; RENAME TABLE a TO b", []effect{{catalog: true}, {catalog: true}}},
		{"CREATE INDEX i ON t (a)", []effect{{}}},
		{"PREPARE s FROM 'SELECT 1'", []effect{{pin: "prepare"}}},
		{"CALL p()", []effect{{dirty: true}}},
		{"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", []effect{{hold: true}}},
		{"XA START 'x'", []effect{{xa: 1}}},
		{"xa rollback 'x'", []effect{{xa: -1}}},
		{"/*!40101 SET NAMES utf8 */", []effect{{sets: []setting{{key: "names", text: "NAMES utf8"}}}}},
		{"/* SET NAMES utf8 */ SELECT 1", []effect{{}}},
	} {
		if got := analyze(tc.sql); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("analyze(%q)\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
		if got := appendEffects(nil, []byte(tc.sql)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("appendEffects(%q)\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
	}
}

func TestSessionStateKeepsTheLastAssignmentOfEachKey(t *testing.T) {
	var st sessionState
	st.apply([]setting{{key: "names", text: "NAMES latin1"}, {key: "@x", text: "@x = 1"}})
	st.apply([]setting{{key: "names", text: "NAMES utf8mb4"}})
	st.apply([]setting{{key: "tx isolation", text: "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", alone: true}})
	if want := "SET @x = 1, NAMES utf8mb4; SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE"; st.key != want {
		t.Errorf("key = %q, want %q", st.key, want)
	}
}

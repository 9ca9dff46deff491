package classify

import "testing"

func TestClassifyMySQLSession(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want MySQLSession
	}{
		{"SELECT * FROM t WHERE id = ?", MySQLSession{}},
		{"SET NAMES utf8mb4", MySQLSession{Names: "setnames utf8mb4"}},
		{"set names 'latin1' collate 'latin1_bin'", MySQLSession{Names: "setnames latin1 latin1_bin"}},
		{"SET autocommit = 0", MySQLSession{}},
		{"SET @@session.autocommit = 1", MySQLSession{}},
		{"SET GLOBAL autocommit = 0", MySQLSession{Other: true}},
		{"SET @x = 1", MySQLSession{Other: true}},
		{"SET sql_mode = 'ANSI'", MySQLSession{Vars: true}},
		{"SET time_zone = '+01:00'", MySQLSession{Vars: true}},
		{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", MySQLSession{Vars: true}},
		{"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", MySQLSession{Other: true}}, // the next transaction's
		{"SET @@SESSION.sql_mode = CONCAT(REPLACE(@@sql_mode, 'STRICT_TRANS_TABLES', ''), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.wait_timeout = 2147483",
			MySQLSession{Vars: true}}, // what Rails says as it connects
		{"SET @x = 1, time_zone = 'UTC'", MySQLSession{Vars: true, Other: true}},
		{"SET time_zone = 'UTC'; SELECT 1", MySQLSession{Vars: true, Other: true}},
		{"USE shop", MySQLSession{Use: "shop"}},
		{"USE shop; SELECT 1", MySQLSession{Use: "shop", Other: true}},
		{"CREATE TEMPORARY TABLE tt (a INT)", MySQLSession{Other: true}},
		{"DROP TEMPORARY TABLE tt", MySQLSession{Other: true}},
		{"CREATE TABLE tt (a INT)", MySQLSession{}},
		{"LOCK TABLES t READ", MySQLSession{Other: true}},
		{"PREPARE s FROM 'SELECT 1'", MySQLSession{Other: true}},
		{"SELECT @x := 1", MySQLSession{Other: true}},
		{"SELECT @x", MySQLSession{}},
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", MySQLSession{Other: true}},
	} {
		if got := ClassifyMySQLSession(tc.sql); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.sql, got, tc.want)
		}
	}
}

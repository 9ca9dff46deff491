package classify

import (
	"slices"
	"testing"
)

func TestClassifyFlags(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want Statement // Statements, Locking, ParseError, AllTables and Reads are compared
	}{
		{"FOR NO KEY UPDATE locks", `SELECT * FROM t WHERE id = 1 FOR NO KEY UPDATE`,
			Statement{Statements: 1, Locking: true, Reads: tables("t")}},
		{"FOR KEY SHARE locks", `SELECT * FROM t FOR KEY SHARE`, Statement{Statements: 1, Locking: true, Reads: tables("t")}},
		{"a lock inside a subquery locks", `SELECT * FROM (SELECT * FROM t FOR UPDATE) s`,
			Statement{Statements: 1, Locking: true, Reads: tables("t")}},
		{"FOR UPDATE OF names an alias, not a table", `SELECT * FROM users u JOIN orgs o ON o.id = u.org FOR UPDATE OF u NOWAIT`,
			Statement{Statements: 1, Locking: true, Reads: tables("orgs", "users")}},
		{"a cursor FOR UPDATE locks", `DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE`,
			Statement{Statements: 1, Locking: true, Reads: tables("t")}},
		{"LOCK TABLE locks", `LOCK TABLE t`, Statement{Statements: 1, Locking: true, Reads: tables("t")}},
		{"a DO block may touch anything", `DO $$ BEGIN PERFORM 1; END $$`, Statement{Statements: 1, AllTables: true}},
		{"CALL may touch anything", `CALL p()`, Statement{Statements: 1, AllTables: true}},
		{"EXECUTE may touch anything", `EXECUTE q`, Statement{Statements: 1, AllTables: true}},
		{"TRUNCATE CASCADE may touch anything", `TRUNCATE t CASCADE`, Statement{Statements: 1, AllTables: true}},
		{"DROP TABLE CASCADE may touch anything", `DROP TABLE t CASCADE`, Statement{Statements: 1, AllTables: true}},
		{"COPY FROM PROGRAM may touch anything", `COPY t FROM PROGRAM 'gunzip < /tmp/t.gz'`, Statement{Statements: 1, AllTables: true}},
		{"COPY TO PROGRAM may touch anything", `COPY t TO PROGRAM 'gzip > /tmp/t.gz'`,
			Statement{Statements: 1, AllTables: true, Reads: tables("t")}},
		{"COMMIT PREPARED may touch anything", `COMMIT PREPARED 'tx'`, Statement{Statements: 1, AllTables: true}},
		{"ROLLBACK PREPARED touches nothing", `ROLLBACK PREPARED 'tx'`, Statement{Statements: 1}},
		{"ALTER INDEX may touch anything", `ALTER INDEX i SET TABLESPACE fast`, Statement{Statements: 1, AllTables: true}},
		{"renaming a schema may touch anything", `ALTER SCHEMA app RENAME TO app_old`, Statement{Statements: 1, AllTables: true}},
		{"moving a table to another schema may touch anything", `ALTER TABLE t SET SCHEMA archive`, Statement{Statements: 1, AllTables: true}},
		{"a plain DROP TABLE touches only its table", `DROP TABLE t`, Statement{Statements: 1}},
		{"an empty statement between semicolons doesn't count", `SELECT 1;;SELECT 2`, Statement{Statements: 2}},
		{"a parse error counts the statements it can split", `SELECT 1; SELEC 2`,
			Statement{Statements: 2, ParseError: true, AllTables: true}},
		{"a NUL byte is a parse error, not the text before it", "SELECT 1\x00; DROP TABLE t",
			Statement{Statements: 2, ParseError: true, AllTables: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Classify(tc.sql)
			if s.Statements != tc.want.Statements || s.Locking != tc.want.Locking ||
				s.ParseError != tc.want.ParseError || s.AllTables != tc.want.AllTables || !slices.Equal(s.Reads, tc.want.Reads) {
				t.Errorf("Classify(%q)\n got %+v\nwant %+v", tc.sql, s, tc.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	want := map[Kind]string{
		KindRead: "read", KindUtility: "utility", KindSession: "session", KindTransaction: "transaction",
		KindDDL: "ddl", KindWrite: "write", Kind(200): "unknown",
	}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), k.String(), s)
		}
	}
}

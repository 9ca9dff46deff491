package d1

import (
	"fmt"
	"testing"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

func TestClassifyFindsKindAndTag(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		kind stmtKind
		tag  string
	}{
		{"  -- c\n /* c */ select 1", kSelect, "SELECT"},
		{"WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", kInsert, ""},
		{"WITH a AS (DELETE FROM x RETURNING 1) SELECT 1", kSelect, ""},
		{"replace into t values (1)", kInsert, "INSERT"},
		{"CREATE UNIQUE INDEX i ON t(a)", kOther, "CREATE INDEX"},
		{"create temp table t (a)", kOther, "CREATE TABLE"},
		{"CREATE VIRTUAL TABLE v USING fts5(x)", kOther, "CREATE TABLE"},
		{"DROP VIEW v", kOther, "DROP VIEW"},
		{"begin isolation level serializable", kBegin, "BEGIN"},
		{"BEGIN IMMEDIATE", kBeginNative, "BEGIN"},
		{"START TRANSACTION READ ONLY", kBegin, "BEGIN"},
		{"END TRANSACTION", kCommit, "COMMIT"},
		{"ROLLBACK TRANSACTION TO SAVEPOINT a", kRollbackTo, "ROLLBACK"},
		{"abort", kRollback, "ROLLBACK"},
		{"SELECT pg_catalog.set_config('a', 'b', false)", kSetConfig, "SELECT"},
		{"SELECT set_config('a', 'b', false)", kSetConfig, "SELECT"},
		{"SET LOCAL search_path TO a, b", kSet, "SET"},
		{" ; ", kEmpty, ""},
		{"PRAGMA table_info(t)", kOther, "PRAGMA"},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			kind, tag := classify(tc.sql, 0)
			if kind != tc.kind || tag != tc.tag {
				t.Errorf("classify = %d %q, want %d %q", kind, tag, tc.kind, tc.tag)
			}
		})
	}
}

func TestStatementEndSkipsQuotedSemicolons(t *testing.T) {
	sql := `SET a = 'x;y' -- ; comment
	; SET "b;" = 1; /* ; */`
	first := statementEnd(sql, 0)
	if sql[first-1] != ';' || sql[first-2] != '\t' {
		t.Errorf("first statement ends at %d: %q", first, sql[:first])
	}
	second := statementEnd(sql, first)
	if sql[first:second] != ` SET "b;" = 1;` {
		t.Errorf("second statement %q", sql[first:second])
	}
	if k, _ := classify(sql, second); k != kEmpty {
		t.Errorf("trailing comment is not empty")
	}
}

func TestParameterTypesAreInferredFromColumns(t *testing.T) {
	schema := map[string]map[string]string{
		"users": {"id": "INTEGER", "name": "TEXT", "avatar": "BLOB", "score": "REAL", "active": "BOOLEAN", "born": "DATE",
			"\x00order": "id\x00name\x00avatar\x00score\x00active\x00born"},
		"posts": {"id": "INTEGER", "user_id": "INTEGER", "body": "TEXT", "\x00order": "id\x00user_id\x00body"},
	}
	cols := func(table string) map[string]string { return schema[table] }
	for _, tc := range []struct {
		sql  string
		want []uint32
	}{
		{`INSERT INTO users (name, avatar, active) VALUES ($1, $2, $3)`, []uint32{pgserver.OIDText, pgserver.OIDBytea, pgserver.OIDBool}},
		{`INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6), ($7, lower($8), 1, 2, 3, 4)`,
			[]uint32{pgserver.OIDInt8, pgserver.OIDText, pgserver.OIDBytea, pgserver.OIDFloat8, pgserver.OIDBool, pgserver.OIDUnknown, pgserver.OIDInt8, pgserver.OIDUnknown}},
		{`UPDATE users SET score = $2, avatar = $3 WHERE id = $1`, []uint32{pgserver.OIDInt8, pgserver.OIDFloat8, pgserver.OIDBytea}},
		{`SELECT * FROM users u JOIN posts p ON p.user_id = u.id WHERE p.body LIKE $1 AND u.active = $2 LIMIT $3 OFFSET $4`,
			[]uint32{pgserver.OIDText, pgserver.OIDBool, pgserver.OIDInt8, pgserver.OIDInt8}},
		{`SELECT * FROM users WHERE $1 = score AND id IN ($2, $3) AND born BETWEEN $4 AND $5`,
			[]uint32{pgserver.OIDFloat8, pgserver.OIDInt8, pgserver.OIDInt8, pgserver.OIDUnknown, pgserver.OIDUnknown}},
		{`SELECT CAST($1 AS BLOB), $2`, []uint32{pgserver.OIDBytea, pgserver.OIDUnknown}},
		{`INSERT INTO posts (user_id, body) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, []uint32{pgserver.OIDInt8, pgserver.OIDText}},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			got := inferParamTypes(tc.sql, len(tc.want), cols)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

package classify

import (
	"reflect"
	"testing"
)

func TestSession(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  Effect
	}{
		{"a plain select has no effect", "SELECT abalance FROM pgbench_accounts WHERE aid = 1", Effect{Statements: 1}},
		{"an empty query has no statements", " ;  -- nothing\n", Effect{}},
		{"SET follows the client", "SET search_path TO app, public",
			Effect{Statements: 1, Settings: []Setting{{Name: "search_path", Stmt: "SET search_path TO app, public"}}}},
		{"SET SESSION is a session setting", "set session statement_timeout = '5s';",
			Effect{Statements: 1, Settings: []Setting{{Name: "statement_timeout", Stmt: "set session statement_timeout = '5s'"}}}},
		{"SET LOCAL stays in its transaction", "SET LOCAL search_path TO x", Effect{Statements: 1}},
		{"SET TRANSACTION stays in its transaction", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", Effect{Statements: 1}},
		{"SET TIME ZONE sets timezone", "SET TIME ZONE 'UTC'",
			Effect{Statements: 1, Settings: []Setting{{Name: "timezone", Stmt: "SET TIME ZONE 'UTC'"}}}},
		{"SET NAMES sets client_encoding", "SET NAMES 'LATIN1'",
			Effect{Statements: 1, Settings: []Setting{{Name: "client_encoding", Stmt: "SET NAMES 'LATIN1'"}}}},
		{"SET x TO DEFAULT resets x", "SET DateStyle TO DEFAULT",
			Effect{Statements: 1, Settings: []Setting{{Name: "datestyle", Reset: true}}}},
		{"RESET resets one parameter", "RESET search_path",
			Effect{Statements: 1, Settings: []Setting{{Name: "search_path", Reset: true}}}},
		{"RESET ALL resets everything", "RESET ALL", Effect{Statements: 1, Settings: []Setting{{All: true}}}},
		{"SET SESSION AUTHORIZATION pins", "SET SESSION AUTHORIZATION app", Effect{Statements: 1, Pin: PinAuthorization}},
		{"LISTEN pins", "LISTEN jobs", Effect{Statements: 1, Pin: PinListen}},
		{"a session advisory lock pins", "SELECT pg_advisory_lock(42)", Effect{Statements: 1, Pin: PinAdvisoryLock}},
		{"a transaction advisory lock does not pin", "SELECT pg_advisory_xact_lock(42)", Effect{Statements: 1}},
		{"a lock name inside a string does not pin", "SELECT 'pg_advisory_lock(1)'", Effect{Statements: 1}},
		{"a temporary table pins", "CREATE TEMP TABLE t (id int)", Effect{Statements: 1, Pin: PinTempTable}},
		{"a global temporary table pins", "create global temporary table t (id int)", Effect{Statements: 1, Pin: PinTempTable}},
		{"SELECT INTO TEMP pins", "SELECT * INTO TEMP t FROM x", Effect{Statements: 1, Pin: PinTempTable}},
		{"a WITH HOLD cursor pins", "DECLARE c CURSOR WITH HOLD FOR SELECT 1", Effect{Statements: 1, Pin: PinHoldCursor}},
		{"a cursor without hold does not pin", "DECLARE c CURSOR FOR SELECT 1", Effect{Statements: 1}},
		{"a session-level set_config pins", "SELECT set_config('search_path', 'x', false)", Effect{Statements: 1, Pin: PinSetConfig}},
		{"a set_config with a parameter pins", "SELECT pg_catalog.set_config($1, $2, $3)", Effect{Statements: 1, Pin: PinSetConfig}},
		{"a transaction-local set_config does not pin", "SELECT set_config('app.tenant', $1, true), 1", Effect{Statements: 1}},
		{"CREATE OR REPLACE FUNCTION changes the catalog", "create or replace function f() returns int language sql immutable as 'select 1'",
			Effect{Statements: 1, CatalogChange: true}},
		{"ALTER FUNCTION changes the catalog", "ALTER FUNCTION f() VOLATILE", Effect{Statements: 1, CatalogChange: true}},
		{"DROP TABLE changes the catalog", "DROP TABLE t", Effect{Statements: 1, CatalogChange: true}},
		{"CREATE VIEW changes the catalog", "create or replace view v as select 1", Effect{Statements: 1, CatalogChange: true}},
		{"CREATE TRIGGER changes the catalog", "CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION f()", Effect{Statements: 1, CatalogChange: true}},
		{"CREATE INDEX does not", "CREATE INDEX ON t (a)", Effect{Statements: 1}},
		{"SQL PREPARE pins", "PREPARE q AS SELECT 1", Effect{Statements: 1, Pin: PinPrepare}},
		{"PREPARE TRANSACTION does not pin", "PREPARE TRANSACTION 'x'", Effect{Statements: 1}},
		{"DISCARD ALL resets and drops statements", "DISCARD ALL",
			Effect{Statements: 1, DropsPrepared: true, Settings: []Setting{{All: true}}}},
		{"DEALLOCATE ALL drops statements", "DEALLOCATE ALL", Effect{Statements: 1, DropsPrepared: true}},
		{"a SET inside a comment does nothing", "/* SET search_path TO x; */ SELECT 1", Effect{Statements: 1}},
		{"a semicolon in a dollar quote does not split", "SELECT $f$ a; SET x = 1 $f$", Effect{Statements: 1}},
		{"several statements add up", "SET a.b = 1; SELECT 1; LISTEN x",
			Effect{Statements: 3, Pin: PinListen, Settings: []Setting{{Name: "a.b", Stmt: "SET a.b = 1"}}}},
		{"an escape string hides its quote", `SELECT E'it\'s; LISTEN x'`, Effect{Statements: 1}},
		{"a quoted parameter keeps its case", `SET "MyApp.Key" = 'v'`,
			Effect{Statements: 1, Settings: []Setting{{Name: "MyApp.Key", Stmt: `SET "MyApp.Key" = 'v'`}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Session(tt.query)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Session(%q)\n got %+v\nwant %+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestSessionAllocatesNothingForPlainQueries(t *testing.T) {
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	if n := testing.AllocsPerRun(100, func() { Session(q) }); n != 0 {
		t.Errorf("Session allocated %v times per plain query, want 0", n)
	}
}

func FuzzSession(f *testing.F) {
	for _, s := range []string{"SET a = 1; LISTEN x", "select $$;$$", "/* /* */ */ reset all", "E'\\'", `"a""b"`, "$1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		e := Session(q)
		if e.Statements < 0 || len(e.Settings) > len(q) {
			t.Fatalf("impossible effect %+v", e)
		}
	})
}

func TestPlainRead(t *testing.T) {
	tests := []struct {
		name  string
		query string
		calls []string
		ok    bool
	}{
		{"a point select is a plain read", "SELECT abalance FROM pgbench_accounts WHERE aid = 1;", nil, true},
		{"its calls are listed", "select count(*), my_fn(1) from t where x in (1)", []string{"count", "my_fn", "in"}, true},
		{"SELECT INTO creates a table", "select * into t2 from t", nil, false},
		{"two statements are not one read", "select 1; delete from t", nil, false},
		{"a data-modifying CTE starts with WITH", "with d as (delete from t returning *) select * from d", nil, false},
		{"an UPDATE is not a read", "update t set x = 1", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, ok := PlainRead(tt.query)
			if ok != tt.ok || !reflect.DeepEqual(calls, tt.calls) {
				t.Errorf("PlainRead(%q) = %v, %v; want %v, %v", tt.query, calls, ok, tt.calls, tt.ok)
			}
		})
	}
}

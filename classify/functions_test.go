package classify

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

func TestClassifyNamesFunctions(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"SQL keywords count under their keyword",
			`SELECT CURRENT_DATE, current_timestamp(3), LOCALTIME, localtimestamp, current_time, CURRENT_USER, session_user, user, current_role, current_catalog, current_schema`,
			[]string{"current_catalog", "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
				"current_user", "localtime", "localtimestamp", "session_user", "user"}},
		{"a written schema stays", `SELECT pg_catalog.now(), now()`, []string{"now", "pg_catalog.now"}},
		{"a quoted name keeps its case", `SELECT "MyFunc"(1), MyOther(2)`, []string{"MyFunc", "myother"}},
		{"SQL syntax calls lose the pg_catalog the parser added",
			`SELECT extract(year FROM ts), ts AT TIME ZONE 'UTC', substring(s FROM 2), position('a' IN s) FROM t`,
			[]string{"extract", "position", "substring", "timezone"}},
		{"the same function twice counts once", `SELECT lower(a), lower(b), LOWER(c) FROM t`, []string{"lower"}},
		{"a TABLESAMPLE method counts as a function", `SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (1)`, []string{"system"}},
		{"a clock word inside a longer input counts as now", `SELECT 'today 12:00'::timestamp, 'Yesterday'::date`, []string{"now"}},
		{"a word that merely contains now does not", `SELECT 'known', 'nowhere', '2024-01-01'::date`, nil},
		{"a procedure and its arguments' functions count", `CALL app.do_work(lower($1))`, []string{"app.do_work", "lower"}},
		{"LIKE ESCAPE calls the parser's like_escape", `SELECT 1 FROM t WHERE x LIKE $1 ESCAPE '!'`, []string{"pg_catalog.like_escape"}},
		{"a window and its aggregate count", `SELECT sum(x) OVER (ORDER BY y), count(*) FILTER (WHERE z) FROM t`, []string{"count", "sum"}},
		{"SQL/JSON constructors count as the functions behind them",
			`SELECT JSON_OBJECT('a': 1), JSON_ARRAY(1, 2), JSON_VALUE(doc, '$.a') FROM t`,
			[]string{"json_build_array", "json_build_object", "json_value"}},
		{"functions in DDL count", `CREATE TABLE t (id bigint DEFAULT nextval('s'), at timestamptz DEFAULT now())`, []string{"nextval", "now"}},
		{"operators and casts are not functions", `SELECT a + b, data->>'k', x::text, y IS DISTINCT FROM z FROM t`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.sql).Functions; !slices.Equal(got, tc.want) {
				t.Errorf("Functions = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuiltinVolatility(t *testing.T) {
	tests := []struct {
		name  string
		fn    string
		want  Volatility
		known bool
	}{
		{"now is stable", "now", Stable, true},
		{"now qualified with pg_catalog is the same", "pg_catalog.now", Stable, true},
		{"CURRENT_DATE is stable", "current_date", Stable, true},
		{"clock_timestamp is volatile", "clock_timestamp", Volatile, true},
		{"random is volatile", "random", Volatile, true},
		{"nextval is volatile", "nextval", Volatile, true},
		{"lower is immutable", "lower", Immutable, true},
		{"count is immutable", "count", Immutable, true},
		{"concat is stable, unlike what one might guess", "concat", Stable, true},
		{"length is stable through its encoding overload", "length", Stable, true},
		{"another schema's lower is not the built-in", "public.lower", Volatile, false},
		{"a user function is unknown", "slugify", Volatile, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v, ok := BuiltinVolatility(tc.fn); v != tc.want || ok != tc.known {
				t.Errorf("BuiltinVolatility(%q) = %v, %v, want %v, %v", tc.fn, v, ok, tc.want, tc.known)
			}
		})
	}
}

func TestVolatilityZeroValueIsVolatile(t *testing.T) {
	var v Volatility
	if v != Volatile || v.String() != "volatile" || Stable.String() != "stable" || Immutable.String() != "immutable" {
		t.Errorf("zero Volatility = %v; Stable = %v; Immutable = %v", v, Stable, Immutable)
	}
}

// BuiltinVolatility's table must say what PostgreSQL 15's pg_proc says: for each name, the
// most volatile of the overloads in pg_catalog (and in uuid-ossp for uuid_generate_v4). The SQL
// keywords that are no pg_proc function count as PostgreSQL's planner counts SQLValueFunction:
// stable.
func TestBuiltinVolatilityMatchesPostgres(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	conn, err := pgx.Connect(ctx, srv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION "uuid-ossp"`); err != nil {
		t.Fatal(err)
	}
	keywords := map[string]bool{}
	for _, name := range sqlValueFunctionNames {
		keywords[name] = true
	}
	for name, want := range builtinVolatility {
		var got string
		err := conn.QueryRow(ctx, `SELECT coalesce(max(provolatile::text), '') FROM pg_proc
			WHERE proname = $1 AND pronamespace IN ('pg_catalog'::regnamespace, 'public'::regnamespace)`, name).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		// 'v' > 's' > 'i' as text, so max is the most volatile overload.
		switch {
		case got == "" && keywords[name]:
			if want != Stable {
				t.Errorf("%s is a SQLValueFunction, stable; the table says %v", name, want)
			}
		case got == "":
			t.Errorf("%s is not in pg_proc", name)
		case map[string]Volatility{"i": Immutable, "s": Stable, "v": Volatile}[got] != want:
			t.Errorf("%s: pg_proc says %q, the table says %v", name, got, want)
		}
	}
}

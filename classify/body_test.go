package classify

import (
	"slices"
	"testing"
)

func TestFunctionBody(t *testing.T) {
	for _, tc := range []struct {
		name, lang, src string
		writes, calls   []string
		all             bool
	}{
		{"a SQL function that updates names its table", "sql", "update t set v = v + 1 returning v",
			[]string{"t"}, nil, false},
		{"a SQL function that only reads writes nothing", "sql", "select count(*) from t", nil, []string{"count"}, false},
		{"nextval in a SQL function writes its sequence", "sql", "select nextval('Public.S')", []string{"public.s"}, []string{"nextval"}, false},
		{"nextval of an argument may write any sequence", "sql", "select nextval($1)", nil, []string{"nextval"}, true},
		{"a SQL function that calls another names the call", "sql", "select g(1); insert into log values (1)", []string{"log"}, []string{"g"}, false},
		{"a PL/pgSQL body's statements and assignments are read",
			"plpgsql", `create function f() returns int language plpgsql as $$
				declare n int;
				begin
					update t set v = v + 1 returning v into n;
					n := nextval('s') + h(n);
					if n > 3 then delete from u; end if;
					return n;
				end $$`,
			[]string{"s", "t", "u"}, []string{"h", "nextval"}, false},
		{"EXECUTE in PL/pgSQL may write anything", "plpgsql", `create function f() returns void language plpgsql as $$
				begin execute 'delete from ' || 't'; end $$`, nil, nil, true},
		{"RETURN QUERY EXECUTE may write anything", "plpgsql", `create function f() returns setof int language plpgsql as $$
				begin return query execute 'select 1'; end $$`, nil, nil, true},
		{"a body that does not parse may write anything", "sql", "updat t set", nil, nil, true},
		{"other languages may write anything", "c", "whatever", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := FunctionBody(tc.lang, tc.src)
			if b.All != tc.all {
				t.Errorf("All = %v, want %v (%+v)", b.All, tc.all, b)
			}
			if tc.all {
				return
			}
			if !slices.Equal(b.Writes, tc.writes) {
				t.Errorf("Writes = %q, want %q", b.Writes, tc.writes)
			}
			if !slices.Equal(b.Calls, tc.calls) {
				t.Errorf("Calls = %q, want %q", b.Calls, tc.calls)
			}
		})
	}
}

func TestSequencesNamesWhatNextvalAndSetvalChange(t *testing.T) {
	for q, want := range map[string][]string{
		`SELECT nextval('s')`:                          {"s"},
		`SELECT nextval('"MySeq"'::regclass)`:          {"MySeq"},
		`SELECT setval('public.S', 10)`:                {"public.s"},
		`SELECT pg_catalog.nextval('a'), currval('b')`: {"a"},
		`SELECT nextval($1)`:                           {"*"},
		`SELECT lower('s')`:                            nil,
	} {
		if got := Classify(q).Sequences; !slices.Equal(got, want) {
			t.Errorf("%s: Sequences = %q, want %q", q, got, want)
		}
	}
}

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// readUntilCached reads q on c until the read is a cache hit, and returns its value: a key is
// kept the second time it misses, and the cache takes a moment to hold it on a busy machine.
func readUntilCached(t *testing.T, ctx context.Context, inst *instance, c *pgx.Conn, q string) string {
	t.Helper()
	hits := cacheHits(t, inst)
	for start := time.Now(); ; {
		var v string
		if err := c.QueryRow(ctx, q).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if cacheHits(t, inst) > hits {
			return v
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s never became a cache hit (is the cache on?)", q)
		}
	}
}

// TestWritesHiddenInFunctionCallsInvalidateWhatTheyWrite: a cached read stays true after a
// write that no statement names: a VOLATILE SQL or PL/pgSQL function that updates the table,
// one that runs dynamic SQL, one made straight at the origin a moment ago, nextval and setval
// of a sequence read by last_value (issue 12).
func TestWritesHiddenInFunctionCallsInvalidateWhatTheyWrite(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	sfx := suffix()
	name := func(s string) string { return s + "_" + sfx }
	direct := connect(t, ctx, directURL())
	setup := strings.NewReplacer("{sfx}", sfx).Replace(`
		create table hw_sql_{sfx} (v int); insert into hw_sql_{sfx} values (0);
		create table hw_pl_{sfx} (v int); insert into hw_pl_{sfx} values (0);
		create table hw_dyn_{sfx} (v int); insert into hw_dyn_{sfx} values (0);
		create table hw_other_{sfx} (v int); insert into hw_other_{sfx} values (0);
		create table hw_new_{sfx} (v int); insert into hw_new_{sfx} values (0);
		create sequence hw_seq_{sfx};
		create function hw_bump_sql_{sfx}() returns int language sql volatile
			as 'update hw_sql_{sfx} set v = v + 1 returning v';
		create function hw_bump_pl_{sfx}() returns int language plpgsql as $$
			declare n int;
			begin
				update hw_pl_{sfx} set v = v + 1 returning v into n;
				n := n + 0;
				return n;
			end $$;
		create function hw_bump_dyn_{sfx}() returns int language plpgsql as $$
			begin
				execute 'update ' || 'hw_dyn_{sfx}' || ' set v = v + 1';
				return 1;
			end $$;`)
	if _, err := direct.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct.Exec(context.Background(), strings.NewReplacer("{sfx}", sfx).Replace(`
			drop function if exists hw_bump_sql_{sfx}(), hw_bump_pl_{sfx}(), hw_bump_dyn_{sfx}(), hw_bump_new_{sfx}();
			drop table hw_sql_{sfx}, hw_pl_{sfx}, hw_dyn_{sfx}, hw_other_{sfx}, hw_new_{sfx}; drop sequence hw_seq_{sfx}`))
	})
	// The pool reads the catalog when it first connects: the functions above are known.
	inst := startServe(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := connectMode(t, ctx, inst.plainURL(), mode)
		for _, tc := range []struct{ read, call string }{
			{"select v::text from " + name("hw_sql"), "select " + name("hw_bump_sql") + "()"},
			{"select v::text from " + name("hw_pl"), "select " + name("hw_bump_pl") + "()"},
			{"select v::text from " + name("hw_dyn"), "select * from " + name("hw_bump_dyn") + "()"},
			{"select last_value::text || is_called::text from " + name("hw_seq"), "select nextval('" + name("hw_seq") + "')"},
			{"select last_value::text || is_called::text from " + name("hw_seq"), "select setval('" + name("hw_seq") + "'::regclass, 1000 + nextval('" + name("hw_seq") + "'))"},
		} {
			before := readUntilCached(t, ctx, inst, c, tc.read)
			if _, err := c.Exec(ctx, tc.call); err != nil {
				t.Fatalf("%v: %s: %v", mode, tc.call, err)
			}
			var want, got string
			if err := direct.QueryRow(ctx, tc.read).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if err := c.QueryRow(ctx, tc.read).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want || got == before {
				t.Errorf("%v: after %s, %s answered %s (before: %s), the origin says %s", mode, tc.call, tc.read, got, before, want)
			}
		}
	}

	// A function whose body names its table invalidates only that table: another cached read
	// stays a hit after the call.
	c := connect(t, ctx, inst.plainURL())
	other := "select v::text from " + name("hw_other")
	readUntilCached(t, ctx, inst, c, other)
	if _, err := c.Exec(ctx, "select "+name("hw_bump_pl")+"()"); err != nil {
		t.Fatal(err)
	}
	hits := cacheHits(t, inst)
	var v string
	if err := c.QueryRow(ctx, other).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if cacheHits(t, inst) <= hits {
		t.Errorf("a call of a function that writes %s dropped the cached read of %s too", name("hw_pl"), name("hw_other"))
	}

	// A function made straight at the origin, which the pool's catalog has not read yet, may
	// write anything: its call drops every cached read of the database.
	newRead := "select v::text from " + name("hw_new")
	before := readUntilCached(t, ctx, inst, c, newRead)
	if _, err := direct.Exec(ctx, fmt.Sprintf("create function %s() returns int language sql as 'update %s set v = v + 1 returning v'",
		name("hw_bump_new"), name("hw_new"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "select "+name("hw_bump_new")+"()"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, newRead).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v == before {
		t.Errorf("after a call of a function the catalog did not know yet, %s still answered %s", newRead, v)
	}
}

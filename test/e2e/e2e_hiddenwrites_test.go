package e2e

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

// TestEveryKindOfWriteInvalidatesTheReadsItChanges keeps the writes that are not a plain
// INSERT, UPDATE or DELETE covered: writable CTEs, CALL, MERGE, DO, upserts; for MySQL stored
// functions that modify data, CALL, multi-table UPDATE, upserts and REPLACE (issue 12).
func TestEveryKindOfWriteInvalidatesTheReadsItChanges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	t.Run("postgres", func(t *testing.T) {
		sfx := suffix()
		r := strings.NewReplacer("{t}", "kw_"+sfx, "{u}", "kwu_"+sfx)
		direct := connect(t, ctx, directURL())
		if _, err := direct.Exec(ctx, r.Replace(`create table {t} (id int primary key, v int); insert into {t} values (1, 0);
			create table {u} (id int primary key, v int); insert into {u} values (1, 0);
			create procedure {t}_bump() language sql as 'update {t} set v = v + 1'`)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { direct.Exec(context.Background(), r.Replace("drop procedure {t}_bump(); drop table {t}, {u}")) })
		inst := startServe(t)
		c := connect(t, ctx, inst.plainURL())
		read := r.Replace("select v::text from {t} where id = 1")
		for _, w := range []string{
			"with x as (update {t} set v = v + 1 returning v) select count(*) from x",
			"call {t}_bump()",
			"merge into {t} using {u} on {t}.id = {u}.id when matched then update set v = {t}.v + 1",
			"do $$ begin update {t} set v = v + 1; end $$",
			"insert into {t} values (1, 0) on conflict (id) do update set v = excluded.v + {t}.v + 1",
		} {
			before := readUntilCached(t, ctx, inst, c, read)
			if _, err := c.Exec(ctx, r.Replace(w)); err != nil {
				t.Fatalf("%s: %v", r.Replace(w), err)
			}
			var got string
			if err := c.QueryRow(ctx, read).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got == before {
				t.Errorf("after %s the cached read still answered %s", r.Replace(w), got)
			}
		}
	})
	t.Run("mysql", func(t *testing.T) {
		sfx := suffix()
		r := strings.NewReplacer("{t}", "kw_"+sfx, "{u}", "kwu_"+sfx)
		direct := openMySQL(t, directMySQLConfig(t))
		for _, q := range []string{
			"create table {t} (id int primary key, v int)", "insert into {t} values (1, 0)",
			"create table {u} (id int primary key, v int)", "insert into {u} values (1, 0)",
			"create procedure {t}_bump() update {t} set v = v + 1",
			"create function {t}_fn() returns int modifies sql data begin update {t} set v = v + 1; return 1; end",
		} {
			if _, err := direct.ExecContext(ctx, r.Replace(q)); err != nil {
				t.Fatalf("%s: %v", r.Replace(q), err)
			}
		}
		t.Cleanup(func() {
			for _, q := range []string{"drop function {t}_fn", "drop procedure {t}_bump", "drop table {t}, {u}"} {
				direct.ExecContext(context.Background(), r.Replace(q))
			}
		})
		inst := startMySQLServe(t)
		// A session that calls a stored function or procedure is served by the origin from then
		// on (it may have set variables): the writes go through a session of their own.
		db, writer := openMySQL(t, inst.mysqlConfig(t)), openMySQL(t, inst.mysqlConfig(t))
		db.SetMaxOpenConns(1)
		read := r.Replace("select v from {t} where id = 1")
		for _, w := range []string{
			"select {t}_fn()",
			"call {t}_bump()",
			"update {t} join {u} on {t}.id = {u}.id set {t}.v = {t}.v + 1, {u}.v = {u}.v + 1",
			"insert into {t} values (1, 0) on duplicate key update v = v + 1",
			"replace into {t} select id, v + 1 from {u}",
		} {
			var before, got int
			hits := cacheHits(t, inst)
			for start := time.Now(); cacheHits(t, inst) == hits; {
				if err := db.QueryRowContext(ctx, read).Scan(&before); err != nil {
					t.Fatal(err)
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("%s never became a cache hit:\n%s", read, inst.metrics(t))
				}
			}
			if _, err := writer.ExecContext(ctx, r.Replace(w)); err != nil {
				t.Fatalf("%s: %v", r.Replace(w), err)
			}
			if err := db.QueryRowContext(ctx, read).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got == before {
				t.Errorf("after %s the cached read still answered %d", r.Replace(w), got)
			}
		}
	})
}

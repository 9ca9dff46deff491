package e2e

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cacheHits reads slipstream_cache_queries_total{status="hit"} of database app.
func cacheHits(t *testing.T, inst *instance) float64 {
	v, _ := metricValue(inst.metrics(t), "slipstream_cache_queries_total", `db="app"`, `status="hit"`)
	return v
}

func TestCachedReadsSeeEveryWriteMadeThroughSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	table := "cache_rw_" + suffix()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0)", table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		writer := connectMode(t, ctx, inst.plainURL(), mode)
		reader := connectMode(t, ctx, inst.plainURL(), mode)
		hits := cacheHits(t, inst)
		for i := 1; i <= 5; i++ {
			var before int
			if err := reader.QueryRow(ctx, "select v from "+table+" where id = $1", 1).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if err := reader.QueryRow(ctx, "select v from "+table+" where id = $1", 1).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if _, err := writer.Exec(ctx, "update "+table+" set v = v + 1 where id = $1", 1); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*pgx.Conn{writer, reader} {
				var after int
				if err := c.QueryRow(ctx, "select v from "+table+" where id = $1", 1).Scan(&after); err != nil {
					t.Fatal(err)
				}
				if after != before+1 {
					t.Fatalf("%v: read %d after the update through slipstream, want %d", mode, after, before+1)
				}
			}
			// The same inside a transaction that commits.
			tx, err := writer.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "update "+table+" set v = v + 1 where id = 1"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			var after int
			if err := reader.QueryRow(ctx, "select v from "+table+" where id = $1", 1).Scan(&after); err != nil || after != before+2 {
				t.Fatalf("%v: read %d, %v after a committed transaction, want %d", mode, after, err, before+2)
			}
		}
		if got := cacheHits(t, inst); got <= hits {
			t.Errorf("%v: no cache hits (%v before, %v after): the repeated read was not served from the cache", mode, hits, got)
		}
	}
}

func TestADirectWriteOnTheOriginAppearsAfterMaxAge(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "[database.caching]", `max_age = "1s"`)
	table := "cache_age_" + suffix()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (v int); insert into %[1]s values (1)", table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })
	c := connect(t, ctx, inst.plainURL())
	read := func() int {
		var v int
		if err := c.QueryRow(ctx, "select v from "+table).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// A key is cached the first time it misses; the cache takes a moment to hold it on a busy
	// machine (ristretto's sets are asynchronous), so read until a read is a hit.
	hits := cacheHits(t, inst)
	for start := time.Now(); cacheHits(t, inst) == hits; {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the read never became a cache hit (is the cache on?)")
		}
		read()
	}
	if _, err := direct.Exec(ctx, "update "+table+" set v = 2"); err != nil {
		t.Fatal(err)
	}
	if v := read(); v != 1 {
		t.Errorf("right after a write behind slipstream's back: %d, want the cached 1 (is the cache on?)", v)
	}
	time.Sleep(1100 * time.Millisecond) // max_age is the contract under test
	// Past max_age the stale answer may be served once more while a refresh runs
	// (stale_while_revalidate); the origin's value follows within moments.
	deadline := time.Now().Add(10 * time.Second)
	for v := read(); v != 2; v = read() {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after max_age the read still answers %d, want 2", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAStaleAnswerIsServedWhileOneRefreshRuns(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "[database.caching]", `max_age = "1s"`, `stale_while_revalidate = "30s"`)
	table := "cache_swr_" + suffix()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (id int, v int); insert into %[1]s values (1, 1)", table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table "+table) })
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		c := connectMode(t, ctx, inst.plainURL(), mode)
		read := func() int {
			var v int
			if err := c.QueryRow(ctx, "select v from "+table+" where id = $1", 1).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		old := read()
		read() // cached now
		if _, err := direct.Exec(ctx, "update "+table+" set v = v + 1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		if v := read(); v != old {
			t.Errorf("%v: within stale_while_revalidate the first read answered %d, want the stale %d", mode, v, old)
		}
		deadline := time.Now().Add(10 * time.Second)
		for v := read(); v != old+1; v = read() {
			if time.Now().After(deadline) {
				t.Fatalf("%v: the background refresh never replaced the stale answer (still %d)", mode, v)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if v, _ := metricValue(inst.metrics(t), "slipstream_cache_queries_total", `db="app"`, `status="stale"`); v < 2 {
		t.Errorf("stale answers counted %v, want at least 2", v)
	}
}

func TestVolatileAndLockingReadsAreNeverCached(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	sfx := suffix()
	direct := connect(t, ctx, directURL())
	setup := fmt.Sprintf(`create sequence seq_%[1]s;
		create table lock_%[1]s (v int); insert into lock_%[1]s values (1);
		create function tick_%[1]s() returns bigint language sql volatile as 'select nextval(''seq_%[1]s'')';`, sfx)
	if _, err := direct.Exec(ctx, setup); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct.Exec(context.Background(), fmt.Sprintf("drop function tick_%[1]s(); drop table lock_%[1]s; drop sequence seq_%[1]s", sfx))
	})
	c := connect(t, ctx, inst.plainURL())
	for _, q := range []string{
		"select now()::text", "select clock_timestamp()::text", "select random()::text",
		"select current_date::text || clock_timestamp()::text",
		fmt.Sprintf("select nextval('seq_%s')::text", sfx), fmt.Sprintf("select tick_%s()::text", sfx),
	} {
		var a, b string
		if err := c.QueryRow(ctx, q).Scan(&a); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		time.Sleep(2 * time.Millisecond) // let the clock move, for now()
		if err := c.QueryRow(ctx, q).Scan(&b); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if a == b {
			t.Errorf("%s answered %q twice: served from the cache", q, a)
		}
	}
	// FOR UPDATE and reads inside a transaction always reach the origin.
	for _, q := range []string{"select v from lock_" + sfx + " for update", "select v from lock_" + sfx} {
		var v int
		c.QueryRow(ctx, "select v from lock_"+sfx).Scan(&v) // a cached copy, if any
		if _, err := direct.Exec(ctx, "update lock_"+sfx+" set v = v + 1"); err != nil {
			t.Fatal(err)
		}
		if err := direct.QueryRow(ctx, "select v - 1 from lock_"+sfx).Scan(&v); err != nil { // the origin's, behind the cache's back
			t.Fatal(err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var inTx int
		if err := tx.QueryRow(ctx, q).Scan(&inTx); err != nil {
			t.Fatal(err)
		}
		tx.Rollback(ctx)
		if inTx != v+1 {
			t.Errorf("%q in a transaction read %d, want the origin's %d", q, inTx, v+1)
		}
	}
}

func TestCachedAnswersMatchTheOriginsInTextAndBinary(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	q := `select 42::int2, 42::int4, 42::int8, 1.5::float4, 2.25::float8, 12.345::numeric, true, 'text'::text,
		'varchar'::varchar(10), '\xdeadbeef'::bytea, '2024-02-29'::date, '12:34:56'::time,
		'2024-02-29 12:34:56+00'::timestamptz, '2024-02-29 12:34:56'::timestamp, '1 day 2 hours'::interval,
		'{"a": [1, 2]}'::jsonb, '{"b": 1}'::json, array[1, 2, 3], array['x', null], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
		'192.168.0.1/24'::inet, null::int, $1::int + 1`
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		want := rowValues(t, ctx, connectMode(t, ctx, directURL(), mode), q)
		c := connectMode(t, ctx, inst.plainURL(), mode)
		for i := range 3 { // a miss, then hits
			if got := rowValues(t, ctx, c, q); !reflect.DeepEqual(got, want) {
				t.Errorf("%v, read %d: through slipstream\n %v\nwant\n %v", mode, i, got, want)
			}
		}
	}
}

func rowValues(t *testing.T, ctx context.Context, c *pgx.Conn, q string) []any {
	t.Helper()
	rows, err := c.Query(ctx, q, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("no row: %v", rows.Err())
	}
	v, err := rows.Values()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAFunctionMadeVolatileStopsBeingCached(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	fn := "liar_" + suffix()
	// The simple protocol: a prepared statement would let PostgreSQL fold the call itself.
	c := connectMode(t, ctx, inst.plainURL(), pgx.QueryExecModeSimpleProtocol)
	// It says IMMUTABLE and returns random(): caching shows as the same answer twice.
	if _, err := c.Exec(ctx, "create function "+fn+"() returns float8 language sql immutable as 'select random()'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		connect(t, context.Background(), directURL()).Exec(context.Background(), "drop function "+fn+"()")
	})
	read := func() (v float64) {
		if err := c.QueryRow(ctx, "select "+fn+"()").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The pool learned the function after the session started: wait until the edge sees it
	// as immutable (it re-reads the catalog after the CREATE) and caches it.
	deadline := time.Now().Add(15 * time.Second)
	for a, b := read(), read(); a != b || read() != b; a, b = read(), read() {
		if time.Now().After(deadline) {
			t.Fatal("an IMMUTABLE function's result was never cached")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Exec(ctx, "alter function "+fn+"() volatile"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for read() == read() {
		if time.Now().After(deadline) {
			t.Fatal("15 s after ALTER FUNCTION ... VOLATILE its result is still cached")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

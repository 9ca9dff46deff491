package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestSessionSettingsAreFollowedByTheCache: a session that SETs a parameter outside a
// transaction block is cached under keys that carry its settings (ORMs SET time zones and
// search paths as they connect): sessions with the same settings share answers, sessions with
// others never see them, a SET rolled back with its transaction leaves the session uncached,
// and a stale answer's background refresh runs with the settings of the session that found it.
func TestSessionSettingsAreFollowedByTheCache(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServeTOML(t, "", "[database.caching]", `max_age = "1s"`, `stale_while_revalidate = "30s"`)
	sfx := suffix()
	sa, sb, table := "sa_"+sfx, "sb_"+sfx, "t_"+sfx
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf(`create schema %[1]s; create table %[1]s.%[3]s (v int); insert into %[1]s.%[3]s values (1);
create schema %[2]s; create table %[2]s.%[3]s (v int); insert into %[2]s.%[3]s values (2)`, sa, sb, table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct.Exec(context.Background(), fmt.Sprintf("drop schema %s cascade; drop schema %s cascade", sa, sb))
	})
	read := "select v from " + table
	session := func(schema string) *pgx.Conn {
		c := connect(t, ctx, inst.plainURL())
		if _, err := c.Exec(ctx, "set search_path to "+schema); err != nil {
			t.Fatal(err)
		}
		return c
	}
	readAs := func(c *pgx.Conn, who string, want int) {
		t.Helper()
		var v int
		if err := c.QueryRow(ctx, read).Scan(&v); err != nil || v != want {
			t.Fatalf("%s read %d, %v; want %d", who, v, err, want)
		}
	}

	// The cache keeps an answer the second time it misses, a moment later (ristretto sets
	// asynchronously): read until one is served from there.
	readUntilHit := func(c *pgx.Conn, who string, want int) {
		t.Helper()
		before := cacheHits(t, inst)
		for range 50 {
			readAs(c, who, want)
			if cacheHits(t, inst) > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s was never served from the cache:\n%s", who, grepLines(inst.metrics(t), "slipstream_cache_queries_total"))
	}
	a := session(sa)
	readUntilHit(a, "session a, search_path "+sa, 1)
	b := session(sb)
	readUntilHit(b, "session b, search_path "+sb, 2)
	c := session(sa)
	// The answer is fresh for 1 s only, and a hit does not make it fresh again: on a loaded
	// machine b's reads can outlast it, and c is then served a's answer stale. Either way it is
	// a's answer, from the cache.
	served := func() float64 {
		m := inst.metrics(t)
		hit, _ := metricValue(m, "slipstream_cache_queries_total", `db="app"`, `status="hit"`)
		stale, _ := metricValue(m, "slipstream_cache_queries_total", `db="app"`, `status="stale"`)
		return hit + stale
	}
	before := served()
	readAs(c, "session c, search_path "+sa, 1)
	if served() <= before {
		t.Errorf("a session with the same settings as another was not served that session's cached answer:\n%s",
			grepLines(inst.metrics(t), "slipstream_cache_queries_total"))
	}

	// A SET in a transaction block that rolls back: the session's settings are the old ones.
	for _, q := range []string{"begin", "set search_path to " + sa, "rollback"} {
		if _, err := b.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	readAs(b, "session b after a rolled-back SET", 2)

	// The background refresh of a stale answer runs with session a's search_path.
	if _, err := direct.Exec(ctx, fmt.Sprintf("update %s.%s set v = 10", sa, table)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var v int
		if err := a.QueryRow(ctx, read).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background refresh never replaced the stale answer (still %d)", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMySQLSessionVariablesAreFollowedByTheCache: a MySQL session that sets session variables
// (ORMs set time_zone and sql_mode as they connect) is cached under keys that carry them:
// sessions with the same time_zone share answers, a session with another never gets them
// (a TIMESTAMP reads differently in each).
func TestMySQLSessionVariablesAreFollowedByTheCache(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startMySQLServe(t)
	table := "tz_" + suffix()
	direct := openMySQL(t, directMySQLConfig(t))
	for _, q := range []string{"SET time_zone = '+00:00'", "CREATE TABLE " + table + " (id int primary key, ts timestamp)",
		"INSERT INTO " + table + " VALUES (1, '2020-01-01 00:00:00')"} {
		if _, err := direct.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { direct.Exec("DROP TABLE " + table) })
	hits := func() float64 {
		v, _ := metricValue(inst.metrics(t), "slipstream_cache_queries_total", `db="`+mytest.AppDB+`"`, `status="hit"`)
		return v
	}
	read := "SELECT ts FROM " + table + " WHERE id = 1"
	session := func(tz string) *sql.DB {
		db := openMySQL(t, inst.mysqlConfig(t))
		db.SetMaxOpenConns(1)
		if _, err := db.ExecContext(ctx, "SET time_zone = '"+tz+"'"); err != nil {
			t.Fatal(err)
		}
		return db
	}
	readAs := func(db *sql.DB, who, want string) {
		t.Helper()
		var got string
		if err := db.QueryRowContext(ctx, read).Scan(&got); err != nil || got != want {
			t.Fatalf("%s read %q, %v; want %q", who, got, err, want)
		}
	}
	readUntilHit := func(db *sql.DB, who, want string) {
		t.Helper()
		before := hits()
		for range 50 {
			readAs(db, who, want)
			if hits() > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s was never served from the cache", who)
	}
	utc := session("+00:00")
	readUntilHit(utc, "a session at +00:00", "2020-01-01 00:00:00")
	plus5 := session("+05:00")
	readUntilHit(plus5, "a session at +05:00", "2020-01-01 05:00:00")
	other := session("+00:00")
	before := hits()
	readAs(other, "another session at +00:00", "2020-01-01 00:00:00")
	if hits() <= before {
		t.Error("a session with the same time_zone as another was not served that session's cached answer")
	}
}

// TestDiscardAllGivesTheSessionBackItsFirstSettings: DISCARD ALL, which Npgsql sends whenever
// its own pool takes a connection back, resets the session: its reads are keyed as a fresh
// session's again, even after a SET in a transaction block had left it uncached.
func TestDiscardAllGivesTheSessionBackItsFirstSettings(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	sfx := suffix()
	schema, table := "sd_"+sfx, "td_"+sfx
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, fmt.Sprintf(`create table %[2]s (v int); insert into %[2]s values (0);
create schema %[1]s; create table %[1]s.%[2]s (v int); insert into %[1]s.%[2]s values (1)`, schema, table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		direct.Exec(context.Background(), fmt.Sprintf("drop schema %s cascade; drop table %s", schema, table))
	})
	// The simple protocol: DISCARD ALL drops pgx's own prepared statements too.
	c := connectMode(t, ctx, inst.plainURL(), pgx.QueryExecModeSimpleProtocol)
	exec := func(q string) {
		t.Helper()
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	read := "select v from " + table
	readUntilHit := func(who string, want int) {
		t.Helper()
		before := cacheHits(t, inst)
		for range 50 {
			var v int
			if err := c.QueryRow(ctx, read).Scan(&v); err != nil || v != want {
				t.Fatalf("%s read %d, %v; want %d", who, v, err, want)
			}
			if cacheHits(t, inst) > before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s was never served from the cache", who)
	}
	exec("set search_path to " + schema + ", public")
	readUntilHit("the session with its search_path set", 1)
	exec("discard all")
	readUntilHit("the session after DISCARD ALL", 0)
	for _, q := range []string{"begin", "set search_path to " + schema, "commit"} { // uncached from here
		exec(q)
	}
	var v int
	if err := c.QueryRow(ctx, read).Scan(&v); err != nil || v != 1 {
		t.Fatalf("after a SET in a transaction block: %d, %v; want 1", v, err)
	}
	exec("discard all")
	readUntilHit("the session after a SET in a transaction block and DISCARD ALL", 0)
}

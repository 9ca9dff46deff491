package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// startPoolTOML runs `slipstream pool` with a config file holding one [[database]] table for
// origin, plus extra lines for it (such as catalog_refresh).
func startPoolTOML(t *testing.T, certs, origin string, dbLines ...string) *node {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[[database]]\norigin = %q\n", origin)
	for _, l := range dbLines {
		b.WriteString(l + "\n")
	}
	path := writeTOML(t, b.String())
	return startNode(t, "pool", "--config", path, "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", certs, "--data-dir", t.TempDir(), "--region", "test")
}

// eventuallyRelated reads view through rw until the cache keeps the read, writes table, and
// reads again, until a write shows: once the pool has read its catalog again and the edges have
// the new profile, a cached read of the view is kept under the view's table too. Each round
// reads with a text of its own, a key not cached under the old catalog. Other tests change the
// shared origin's catalog all the time, so the pool's log can't tell which re-read saw the view.
func eventuallyRelated(t *testing.T, rw readWrite, view, table string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for round := 1; ; round++ {
		read := fmt.Sprintf("select v from %s where id = 1 and %d = %d", view, round, round)
		var before, after int
		var err error
		for range 3 { // the cache keeps it the second time it misses
			if before, err = rw.read(read); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.write("update " + table + " set v = v + 1 where id = 1"); err != nil {
			t.Fatal(err)
		}
		if after, err = rw.read(read); err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Logf("the write showed in round %d", round)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s a cached read of the view made at the origin still misses writes to its table", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAViewMadeStraightAtTheOriginIsLearnedAtTheNextCatalogRefresh: a migration run against
// the database, not through Slipstream, makes a view. The pool reads the catalog again every
// catalog_refresh while it has connections, finds the view and has the edges fetch the new
// profile, so a cached read of the view is invalidated by a write to its table made through
// the edge. Without the re-read the cached read stays stale until max_age.
func TestAViewMadeStraightAtTheOriginIsLearnedAtTheNextCatalogRefresh(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := testContext(t, 90*time.Second)
		certs := makeCerts(t)
		pool := startPoolTOML(t, certs, directURL(), `catalog_refresh = "300ms"`)
		edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--certs", certs, "--data-dir", t.TempDir(), "--origin", directURL())
		conn := connect(t, ctx, edge.appURL(t))
		if _, err := conn.Exec(ctx, "select 1"); err != nil { // the pool has its catalog from now on
			t.Fatal(err)
		}
		table, view := "cat_t_"+suffix(), "cat_v_"+suffix()
		direct := connect(t, ctx, directURL())
		t.Cleanup(func() {
			direct.Exec(context.Background(), fmt.Sprintf("drop view if exists %s; drop table if exists %s", view, table))
		})
		if _, err := direct.Exec(ctx, fmt.Sprintf("create table %s (id int primary key, v int); insert into %[1]s values (1, 0); create view %s as select id, v from %[1]s", table, view)); err != nil {
			t.Fatal(err)
		}
		eventuallyRelated(t, pgReadWrite(ctx, conn, conn), view, table, 10*time.Second)
	})
	t.Run("mysql", func(t *testing.T) {
		ctx := testContext(t, 90*time.Second)
		certs := makeCerts(t)
		origin := mariaDB(t).URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)
		pool := startPoolTOML(t, certs, origin, `catalog_refresh = "300ms"`)
		edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
			"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", certs, "--data-dir", t.TempDir(),
			"--origin", origin)
		db := openMySQL(t, edge.mysqlConfigOf(t))
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		table, view := "cat_t_"+suffix(), "cat_v_"+suffix()
		direct := openMySQL(t, directMySQLConfig(t))
		t.Cleanup(func() {
			direct.Exec("drop view if exists " + view)
			direct.Exec("drop table if exists " + table)
		})
		for _, q := range []string{"create table " + table + " (id int primary key, v int)",
			"insert into " + table + " values (1, 0)", "create view " + view + " as select id, v from " + table} {
			if _, err := direct.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		eventuallyRelated(t, mysqlReadWrite(ctx, db, db), view, table, 10*time.Second)
	})
}

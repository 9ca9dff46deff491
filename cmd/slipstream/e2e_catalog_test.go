package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// The message the pool logs when its periodic re-read finds the catalog changed.
const catalogChangedOutside = "changed outside Slipstream"

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

// waitForLog waits until n's log shows msg.
func waitForLog(t *testing.T, n *node, msg string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); !strings.Contains(n.stderr.String(), msg); {
		if time.Now().After(deadline) {
			t.Fatalf("after %s the log does not show %q:\n%s", within, msg, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
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
		waitForLog(t, pool, catalogChangedOutside, 10*time.Second)
		readsSeeRelatedWrites(t, pgReadWrite(ctx, conn, conn), []relatedWrite{{"a view made straight at the origin, after a write to its table",
			"select v from " + view + " where id = 1", "update " + table + " set v = 1 where id = 1"}})
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
		waitForLog(t, pool, catalogChangedOutside, 10*time.Second)
		readsSeeRelatedWrites(t, mysqlReadWrite(ctx, db, db), []relatedWrite{{"a view made straight at the origin, after a write to its table",
			"select v from " + view + " where id = 1", "update " + table + " set v = 1 where id = 1"}})
	})
}

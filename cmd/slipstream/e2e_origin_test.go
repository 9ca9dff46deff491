package main

// End-to-end tests of what a newcomer meets first: naming databases with --origin NAME=URL.

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// printedURLs returns the connection strings serve printed for database name, by scheme.
func printedURLs(t *testing.T, in *instance, name string) map[string]string {
	t.Helper()
	urls := map[string]string{}
	re := regexp.MustCompile(`(?m)^database ` + regexp.QuoteMeta(name) + `(?: \(mysql\))?: ((\w+)://\S+)$`)
	for _, m := range re.FindAllStringSubmatch(in.stdout.String(), -1) {
		urls[m[2]] = m[1]
	}
	return urls
}

func TestServeAPostgreSQLAndAMySQLDatabaseUnderOneName(t *testing.T) {
	t.Parallel()
	my := mariaDB(t)
	in := runServeFor(t, "bench", []string{
		"--origin", "bench=" + srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB),
		"--origin", "bench=" + my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB),
	})
	urls := printedURLs(t, in, "bench")
	if urls["postgres"] == "" || urls["mysql"] == "" {
		t.Fatalf("serve printed %q for database bench: want a postgres:// and a mysql:// line\n%s", urls, in.stdout.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Each protocol reaches its own origin, also for a read served from the cache the second
	// and third time.
	pg := connect(t, ctx, withQuery(urls["postgres"], "sslmode", "disable"))
	inMy := &instance{PGURL: urls["mysql"]}
	mc := inMy.mysqlConfig(t)
	mdb := openMySQL(t, mc)
	for i := range 3 {
		var pgVersion, myVersion string
		if err := pg.QueryRow(ctx, "select version()").Scan(&pgVersion); err != nil {
			t.Fatalf("PostgreSQL client, query %d: %v", i+1, err)
		}
		if err := mdb.QueryRowContext(ctx, "select version()").Scan(&myVersion); err != nil {
			t.Fatalf("MySQL client, query %d: %v", i+1, err)
		}
		if !strings.HasPrefix(pgVersion, "PostgreSQL 15") || !strings.Contains(myVersion, "MariaDB") {
			t.Fatalf("query %d: PostgreSQL client got %q, MySQL client got %q: want each its own origin's version", i+1, pgVersion, myVersion)
		}
	}
	// A write on one side is not seen on the other: they are different databases.
	table := "shared_name_" + suffix()
	if _, err := pg.Exec(ctx, "create table "+table+" (v text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Exec(context.Background(), "drop table "+table) })
	var n int
	err := mdb.QueryRowContext(ctx, "select count(*) from information_schema.tables where table_name = ?", table).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("MySQL side sees %d tables named %s (%v): want 0", n, table, err)
	}
}

package e2e

// End-to-end tests of what a newcomer meets first: naming databases with --origin NAME=URL.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

func TestServeAPostgreSQLAndAMySQLDatabaseUnderOneName(t *testing.T) {
	t.Parallel()
	my := mariaDB(t)
	in := runServeFor(t, "bench", []string{
		"--origin", "bench=" + srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB),
		"--origin", "bench=" + my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB),
	})
	urls := map[string]string{}
	for _, scheme := range []string{"postgres", "mysql"} {
		urls[scheme] = urlOf(t, in.stdout.String(), "bench", scheme)
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

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// originLine returns the line serve printed at start about database db's origin.
func originLine(t *testing.T, in *instance, db string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^origin ` + regexp.QuoteMeta(db) + `: (.*)$`).FindStringSubmatch(in.stdout.String())
	if m == nil {
		t.Fatalf("serve printed no origin line for %s:\n%s", db, in.stdout.String())
	}
	return m[0]
}

// TestOriginErrorsReachClientsWithTheOriginsMeaning: a wrong password or database in the origin
// URL, or an origin that is down, is told at start (one line per database, no password) and to
// every client, with the code the origin meant and a message saying it is Slipstream's login
// to the origin, not the client's, that failed.
func TestOriginErrorsReachClientsWithTheOriginsMeaning(t *testing.T) {
	t.Parallel()
	const wrongPassword = "not-the-origin-password-7f3a"
	my := mariaDB(t)
	down := closedPort(t)
	tests := []struct {
		name, db, origin string
		wantLine         string // in the start line
		pgCode           string // for a PostgreSQL origin
		myErrno          uint16 // for a MySQL origin
		wantMessage      string
	}{
		{"wrong origin password, PostgreSQL", pgtest.AppDB, srv.URL(pgtest.AppUser, wrongPassword, pgtest.AppDB),
			"the origin refused Slipstream's login: password authentication failed", "28P01", 0, "refused Slipstream's login, not yours"},
		{"wrong origin database, PostgreSQL", "nosuchdb", srv.URL(pgtest.AppUser, pgtest.AppPassword, "nosuchdb"),
			`the origin has no such database: database "nosuchdb" does not exist`, "3D000", 0, "no database of the name in Slipstream's origin URL"},
		{"origin down, PostgreSQL", pgtest.AppDB, "postgres://" + pgtest.AppUser + ":" + wrongPassword + "@" + down + "/" + pgtest.AppDB + "?sslmode=disable",
			"the origin is not reachable: cannot connect to " + down + ": connection refused", "57P03", 0, "the origin database is not reachable"},
		{"wrong origin password, MySQL", mytest.AppDB, my.URL(mytest.AppUser, wrongPassword, mytest.AppDB),
			"the origin refused Slipstream's login: Access denied for user", "", 1045, "refused Slipstream's login, not yours"},
		{"wrong origin database, MySQL", "nosuchdb", my.URL(mytest.AppUser, mytest.AppPassword, "nosuchdb"),
			"the origin has no such database: Access denied for user 'app'@'%' to database 'nosuchdb' (error 1044)", "", 1049, "no database of the name in Slipstream's origin URL"},
		{"origin down, MySQL", mytest.AppDB, "mysql://" + mytest.AppUser + ":" + wrongPassword + "@" + down + "/" + mytest.AppDB,
			"the origin is not reachable: cannot connect to " + down + ": connection refused", "", 1105, "the origin database is not reachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := runServeFor(t, tt.db, []string{"--origin", tt.origin})
			line := originLine(t, in, tt.db)
			t.Logf("start line: %s", line)
			if !strings.Contains(line, tt.wantLine) {
				t.Errorf("start line %q: want it to say %q", line, tt.wantLine)
			}
			if strings.Contains(line, wrongPassword) || strings.Contains(in.stderr.String(), wrongPassword) {
				t.Errorf("the origin's password is in the start line or the log:\n%s\n%s", line, in.stderr.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			if tt.pgCode != "" {
				var c *pgx.Conn
				c, err = pgx.Connect(ctx, withQuery(in.PGURL, "sslmode", "disable"))
				if err == nil {
					c.Close(ctx)
				}
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != tt.pgCode {
					t.Fatalf("client got %v: want SQLSTATE %s", err, tt.pgCode)
				}
			} else {
				err = openMySQL(t, in.mysqlConfig(t)).PingContext(ctx)
				if mysqlErrno(err) != tt.myErrno {
					t.Fatalf("client got %v: want error %d", err, tt.myErrno)
				}
			}
			t.Logf("client error: %v", err)
			if !strings.Contains(err.Error(), tt.wantMessage) {
				t.Errorf("client got %q: want it to say %q", err, tt.wantMessage)
			}
			if strings.Contains(err.Error(), wrongPassword) {
				t.Errorf("the client's error holds the origin's password: %v", err)
			}
		})
	}
}

// TestOriginErrorsAndSharedNamesThroughAnEdgeAndAPool: the origin's refusal crosses the tunnel
// as itself, the edge prints its origin lines through the pool, and a PostgreSQL and a MySQL
// database of one name each reach their own origin through the tunnel.
func TestOriginErrorsAndSharedNamesThroughAnEdgeAndAPool(t *testing.T) {
	t.Parallel()
	const wrongPassword = "not-the-origin-password-5c1d"
	my := mariaDB(t)
	origins := []string{
		"--origin", srv.URL(pgtest.AppUser, wrongPassword, pgtest.AppDB),
		"--origin", "bench=" + srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB),
		"--origin", "bench=" + my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB),
	}
	dir := makeCerts(t)
	pool := startNode(t, append([]string{"pool", "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", dir, "--data-dir", t.TempDir(), "--region", "test"}, origins...)...)
	edge := startNode(t, append([]string{"edge", "--pool", "test=" + pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", dir, "--data-dir", t.TempDir()}, origins...)...)

	ctx := testContext(t, 30*time.Second)
	// The edge checks its origins through the pool in the background.
	wantLines := []string{
		"origin app: the origin refused Slipstream's login: password authentication failed for user \"app\" (SQLSTATE 28P01)",
		"origin bench: ok (server 15.",
	}
	if err := eventually(ctx, func() error {
		for _, out := range []string{pool.out.String(), edge.out.String()} {
			for _, want := range wantLines {
				if !strings.Contains(out, want) {
					return fmt.Errorf("no line %q in:\n%s", want, out)
				}
			}
			if n := strings.Count(out, "origin bench: ok"); n != 2 {
				return fmt.Errorf("%d lines say origin bench: ok, want 2 (PostgreSQL and MySQL):\n%s", n, out)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{pool.out.String(), edge.out.String(), pool.stderr.String(), edge.stderr.String()} {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, wrongPassword) && !strings.HasPrefix(line, "database ") {
				t.Errorf("a line holds the origin's password: %s", line)
			}
		}
	}

	_, err := pgx.Connect(ctx, withQuery(urlOf(t, edge.out.String(), "app", "postgres"), "sslmode", "disable"))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" || !strings.Contains(pe.Message, "refused Slipstream's login, not yours") {
		t.Fatalf("client of the edge got %v: want 28P01 saying the origin refused Slipstream's login", err)
	}

	pg := connect(t, ctx, withQuery(urlOf(t, edge.out.String(), "bench", "postgres"), "sslmode", "disable"))
	mdb := openMySQL(t, (&instance{PGURL: urlOf(t, edge.out.String(), "bench", "mysql")}).mysqlConfig(t))
	var pgVersion, myVersion string
	if err := pg.QueryRow(ctx, "select version()").Scan(&pgVersion); err != nil {
		t.Fatal(err)
	}
	if err := mdb.QueryRowContext(ctx, "select version()").Scan(&myVersion); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pgVersion, "PostgreSQL 15") || !strings.Contains(myVersion, "MariaDB") {
		t.Fatalf("PostgreSQL client got %q, MySQL client got %q: want each its own origin's version", pgVersion, myVersion)
	}
}

// urlOf returns the connection string of database name and scheme in a node's output.
func urlOf(t *testing.T, out, name, scheme string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^database ` + regexp.QuoteMeta(name) + `(?: \(mysql\))?: (` + scheme + `://\S+)$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s line for database %s in:\n%s", scheme, name, out)
	}
	return m[1]
}

package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestUpgradeWithHandoverKeepsMySQLSessions: a MySQL client session, idle between commands,
// moves to the new process at each of two SIGUSR2 upgrades with its state: the database it
// chose with USE, its SET NAMES, a session variable it set, a server-side prepared statement
// (executed by the id the client holds) and its connection id, which a KILL QUERY from
// another client still reaches. The client never reconnects (go-mysql's client does not).
func TestUpgradeWithHandoverKeepsMySQLSessions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	my := mariaDB(t)
	database := fmt.Sprintf("[[database]]\nname = %q\nkind = \"mysql\"\norigin = %q\n", mytest.AppDB, my.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB))
	cfg := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", `shutdown_timeout = "30s"`, database)
	c := startChild(t, mytest.AppDB, "serve", "--config", cfg, "--data-dir", t.TempDir())
	u, err := url.Parse(c.PGURL)
	if err != nil {
		t.Fatal(err)
	}
	held := rawMySQL(t, u.Host)
	id := held.GetConnectionID()
	for _, q := range []string{"SET NAMES utf8mb4 COLLATE utf8mb4_bin", "SET SESSION time_zone = '+03:00'", "USE information_schema"} {
		if _, err := held.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	stmt, err := held.Prepare("select ? + 1")
	if err != nil {
		t.Fatal(err)
	}
	others := openMySQL(t, newMySQLConfig(u.Host, mytest.AppDB))
	check := func(when string) {
		t.Helper()
		r, err := held.Execute("select @@collation_connection, @@session.time_zone, database()")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		var got []string
		for col := range 3 {
			s, _ := r.GetString(0, col)
			got = append(got, s)
		}
		if want := "utf8mb4_bin +03:00 information_schema"; strings.Join(got, " ") != want {
			t.Errorf("%s: the session's state is %q, want %q", when, strings.Join(got, " "), want)
		}
		r, err = stmt.Execute(41)
		if err != nil {
			t.Fatalf("%s: the prepared statement: %v", when, err)
		}
		if n, _ := r.GetInt(0, 0); n != 42 {
			t.Errorf("%s: the prepared statement answered %d, want 42", when, n)
		}
		// KILL QUERY by the connection id the client got from the first process.
		killed := make(chan error, 1)
		go func() {
			killed <- eventually(ctx, func() error {
				var running int
				others.QueryRowContext(ctx, "select count(*) from information_schema.processlist where info = 'select sleep(20)'").Scan(&running)
				if running == 0 {
					return fmt.Errorf("not running yet")
				}
				_, err := others.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id))
				return err
			})
		}()
		start := time.Now()
		r, err = held.Execute("select sleep(20)")
		if kerr := <-killed; kerr != nil {
			t.Fatalf("%s: KILL QUERY %d: %v", when, id, kerr)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("%s: KILL QUERY %d did not reach the session's query (it ran %v: %v)", when, id, took, err)
		}
	}
	check("before the handovers")
	c.handOver(t, ctx)
	check("after the first handover")
	c.handOver(t, ctx)
	check("after the second handover")
	if n := strings.Count(c.stderr.String(), "sessions_handed_over=0"); n > 0 {
		t.Errorf("a handover moved no session:\n%s", c.stderr.String())
	}
	c.stopLast(t, ctx)
}

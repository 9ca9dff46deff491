package e2e

// `slipstream serve --origin mysql://...` in-process in front of a real MariaDB 10.11, which
// the test starts for itself (the package's TestMain starts PostgreSQL only).

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// mariadb starts a MariaDB for the calling test and stops it when the test ends.
func mariadb(t *testing.T) *mytest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := mytest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// mysqlDSN turns the mysql:// line serve printed into a go-sql-driver DSN with params.
func mysqlDSN(t *testing.T, connString, params string) string {
	t.Helper()
	u, err := url.Parse(connString)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = u.User.Username(), pw, "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	dsn := c.FormatDSN()
	if params != "" {
		if strings.Contains(dsn, "?") {
			dsn += "&" + params
		} else {
			dsn += "?" + params
		}
	}
	return dsn
}

func TestServeMySQLOrigin(t *testing.T) {
	m := mariadb(t)
	in := runServeFor(t, mytest.AppDB, []string{"--mysql-listen", "127.0.0.1:0",
		"--origin", m.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)})
	if !strings.HasPrefix(in.PGURL, "mysql://app:app-secret@127.0.0.1:") {
		t.Fatalf("serve printed %q for the MySQL database", in.PGURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, params := range []string{"", "tls=skip-verify", "interpolateParams=true&multiStatements=true"} {
		t.Run("go-sql-driver "+params, func(t *testing.T) {
			db, err := sql.Open("mysql", mysqlDSN(t, in.PGURL, params))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var v string
			if err := db.QueryRowContext(ctx, "SELECT CONCAT(?, VERSION())", "v").Scan(&v); err != nil || !strings.Contains(v, "MariaDB") {
				t.Fatalf("query: %v %q", err, v)
			}
		})
	}

	t.Run("a wrong password is 1045 and an unknown database 1049", func(t *testing.T) {
		for _, tc := range []struct {
			mangle func(string) string
			want   uint16
		}{
			{func(s string) string { return strings.Replace(s, ":app-secret@", ":wrong@", 1) }, 1045},
			{func(s string) string { return strings.TrimSuffix(s, "/app") + "/nosuch" }, 1049},
		} {
			db, err := sql.Open("mysql", mysqlDSN(t, tc.mangle(in.PGURL), ""))
			if err != nil {
				t.Fatal(err)
			}
			err = db.PingContext(ctx)
			db.Close()
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != tc.want {
				t.Fatalf("got %v, want %d", err, tc.want)
			}
		}
	})

	t.Run("the mariadb command-line client", func(t *testing.T) {
		if _, err := exec.LookPath("mariadb"); err != nil {
			t.Skip("no mariadb client")
		}
		u, _ := url.Parse(in.PGURL)
		mariadb := func(args ...string) string {
			args = append([]string{"--protocol=tcp", "-h", u.Hostname(), "-P", u.Port(), "-u", mytest.AppUser, "-p" + mytest.AppPassword}, args...)
			out, err := exec.CommandContext(ctx, "mariadb", append(args, mytest.AppDB)...).CombinedOutput()
			if err != nil {
				t.Fatalf("mariadb %q: %v\n%s", args, err, out)
			}
			return string(out)
		}
		if out := mariadb("--skip-ssl", "-N", "-e", "SELECT 40 + 2"); strings.TrimSpace(out) != "42" {
			t.Fatalf("mariadb: %q", out)
		}
		if out := mariadb("--ssl", "-e", "status"); !strings.Contains(out, "Cipher in use") {
			t.Fatalf("mariadb --ssl did not use TLS:\n%s", out)
		}
	})
}

var mysqlLine = regexp.MustCompile(`(?m)^database (\S+) \(mysql\): (\S+)$`)

// TestServeEmbeddedD1OverMySQL: with nothing configured, the embedded D1 database is served on
// --mysql-listen too, to MySQL clients without a password on loopback.
func TestServeEmbeddedD1OverMySQL(t *testing.T) {
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--pg-listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0",
			"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, stdout, stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	}()
	var connString string
	deadline := time.After(15 * time.Second)
	for connString == "" {
		changed := stdout.Changed() // before reading, so that a line printed meanwhile wakes us
		if m := mysqlLine.FindStringSubmatch(stdout.String()); m != nil && m[1] == "main" {
			connString = m[2]
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no MySQL line for main; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}
	if !strings.HasPrefix(connString, "mysql://slipstream@127.0.0.1:") {
		t.Fatalf("serve printed %q", connString)
	}
	db, err := sql.Open("mysql", mysqlDSN(t, connString, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	qctx, qcancel := context.WithTimeout(ctx, 20*time.Second)
	defer qcancel()
	if _, err := db.ExecContext(qctx, "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(qctx, "INSERT INTO kv VALUES (?, ?)", "a", "b"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db.QueryRowContext(qctx, "SELECT v FROM kv WHERE k = ?", "a").Scan(&v); err != nil || v != "b" {
		t.Fatalf("select: %v %q", err, v)
	}
	// As the README says: mysql -h 127.0.0.1 -P 3307 -u slipstream main.
	if _, err := exec.LookPath("mysql"); err == nil {
		u, _ := url.Parse(connString)
		out, err := exec.CommandContext(qctx, "mysql", "--protocol=tcp", "-h", u.Hostname(), "-P", u.Port(),
			"-u", "slipstream", "--skip-ssl", "-N", "-e", "SELECT v FROM kv", "main").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "b" {
			t.Fatalf("mysql: %v\n%s", err, out)
		}
	}
}

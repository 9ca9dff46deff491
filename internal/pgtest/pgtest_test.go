package pgtest

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var srv *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &srv)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestAppUserRunsQueriesOnPostgres15(t *testing.T) {
	conn := connect(t, srv.URL(AppUser, AppPassword, AppDB))
	var version, db, listen string
	err := conn.QueryRow(context.Background(),
		"SELECT version(), current_database(), current_setting('listen_addresses')").Scan(&version, &db, &listen)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, "PostgreSQL 15") {
		t.Errorf("version() = %q, want PostgreSQL 15", version)
	}
	if db != AppDB || listen != "127.0.0.1" {
		t.Errorf("database %q listen_addresses %q, want %q and 127.0.0.1", db, listen, AppDB)
	}
}

func TestPasswordsAreStoredAsTheRoleExpects(t *testing.T) {
	conn := connect(t, srv.AdminURL())
	for role, prefix := range map[string]string{AppUser: "SCRAM-SHA-256$", MD5User: "md5"} {
		var stored string
		err := conn.QueryRow(context.Background(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stored, prefix) {
			t.Errorf("%s password stored as %.14q..., want prefix %q", role, stored, prefix)
		}
	}
}

func TestMD5UserLogsInWithMD5(t *testing.T) {
	conn := connect(t, srv.URL(MD5User, MD5Password, AppDB))
	var user string
	if err := conn.QueryRow(context.Background(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != MD5User {
		t.Errorf("current_user = %q, want %q", user, MD5User)
	}
}

func TestWrongPasswordFailsWith28P01(t *testing.T) {
	for _, user := range []string{AppUser, MD5User, AdminUser} {
		t.Run(user, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, srv.URL(user, "wrong", AppDB))
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connected with a wrong password")
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
				t.Fatalf("error = %v, want SQLSTATE 28P01", err)
			}
		})
	}
}

func TestStopShutsDownAndRemovesTheDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port == srv.Port {
		t.Errorf("second server got the shared server's port %d", s.Port)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(s.proc.Dir); !os.IsNotExist(err) {
		t.Errorf("directory %s still there after Stop (stat: %v)", s.proc.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still accepts connections after Stop", s.Port)
	}
}

func TestRestartEndsEveryConnectionAndServesAgainOnTheSamePort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	own, err := Start(ctx) // not srv: other tests use it meanwhile
	if err != nil {
		t.Fatal(err)
	}
	defer own.Stop()
	conn := connect(t, own.URL(AppUser, AppPassword, AppDB))
	port := own.Port
	if err := own.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "select 1"); err == nil {
		t.Error("a connection open across the restart still works")
	}
	if own.Port != port {
		t.Errorf("port %d after the restart, want %d", own.Port, port)
	}
	var one int
	if err := connect(t, own.URL(AppUser, AppPassword, AppDB)).QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Errorf("a new connection after the restart: %v", err)
	}
}

package mytest

import (
	"context"
	"database/sql"
	"os"
	"testing"
)

var srv *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &srv)) }

func TestAppUserReachesItsDatabaseOverTCP(t *testing.T) {
	db, err := sql.Open("mysql", srv.DSN(AppUser, AppPassword, AppDB))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name, version string
	if err := db.QueryRowContext(context.Background(), "SELECT DATABASE(), VERSION()").Scan(&name, &version); err != nil {
		t.Fatal(err)
	}
	if name != AppDB {
		t.Fatalf("DATABASE() = %q, want %q", name, AppDB)
	}
	t.Logf("MariaDB %s on %s", version, srv.Addr())
}

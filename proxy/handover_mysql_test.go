package proxy

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/cache"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
)

// TestMySQLHandOverMovesTheSessionsState hands a MySQL session from one edge to another,
// each in front of its own pool on the test's MariaDB, as two processes do at SIGUSR2 (the
// state goes through JSON, as over the handover's socket, the connection through a
// duplicated descriptor): its USE, SET NAMES, session variable and prepared statement are
// there on the other side, and its client notices nothing. The last command before the
// handover went to the pool side, so the client reader was reading ahead when it started.
func TestMySQLHandOverMovesTheSessionsState(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps func(*client.Conn)
	}{
		{"deprecate_eof", func(*client.Conn) {}},
		{"classic_eof", func(c *client.Conn) { c.UnsetCapability(gomysql.CLIENT_DEPRECATE_EOF) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := Database{Name: "shop", User: "edgeuser", Password: "edge-pw"}
			edge := func() Config {
				c, err := cache.New(1 << 20)
				if err != nil {
					t.Fatal(err)
				}
				return Config{Cache: c}
			}
			old, addr := servePooledEdge(t, edge(), mysqlpool.Config{MaxConns: 2}, db)
			next := newPooledEdge(t, edge(), mysqlpool.Config{MaxConns: 2}, db)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			cl, err := client.ConnectWithTimeout(addr, db.User, db.Password, db.Name, 10*time.Second, func(c *client.Conn) error {
				tc.caps(c)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for _, q := range []string{"SET NAMES utf8mb4 COLLATE utf8mb4_bin", "SET SESSION time_zone = '+03:00'", "USE information_schema"} {
				if _, err := cl.Execute(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			stmt, err := cl.Prepare("select ? + 1")
			if err != nil {
				t.Fatal(err)
			}
			// go-mysql's execute says PARAMETER_COUNT_AVAILABLE (0x08), which opens no cursor:
			// the statement stays movable.
			if _, err := stmt.Execute(40); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Execute("select sleep(0)"); err != nil { // to the pool side: the reader reads ahead
				t.Fatal(err)
			}

			moved := make(chan HandedSession, 1)
			old.HandOver(func(f *os.File, h HandedSession) error {
				b, err := json.Marshal(h)
				if err != nil {
					return err
				}
				var got HandedSession
				if err := json.Unmarshal(b, &got); err != nil {
					return err
				}
				nc, err := net.FileConn(f)
				if err != nil {
					return err
				}
				moved <- got
				return next.Adopt(ctx, nc, got)
			})
			var h HandedSession
			select {
			case h = <-moved:
			case <-ctx.Done():
				t.Fatal("the idle session was not handed over")
			}
			if h.MySQL == nil || h.MySQL.ID != cl.GetConnectionID() || len(h.MySQL.Stmts) != 1 {
				t.Fatalf("handed over: %+v, want the MySQL session %d with its statement", h.MySQL, cl.GetConnectionID())
			}

			r, err := cl.Execute("select @@collation_connection, @@session.time_zone, database()")
			if err != nil {
				t.Fatalf("after the handover: %v", err)
			}
			var got []string
			for col := range 3 {
				s, _ := r.GetString(0, col)
				got = append(got, s)
			}
			if want := "utf8mb4_bin +03:00 information_schema"; strings.Join(got, " ") != want {
				t.Errorf("after the handover the session's state is %q, want %q", strings.Join(got, " "), want)
			}
			for range 2 { // the second from the cache
				r, err = stmt.Execute(41)
				if err != nil {
					t.Fatalf("the prepared statement after the handover: %v", err)
				}
				if n, _ := r.GetInt(0, 0); n != 42 {
					t.Errorf("the prepared statement answered %d, want 42", n)
				}
			}
			if n := next.Sessions(); n != 1 {
				t.Errorf("the edge the session moved to serves %d sessions, want 1", n)
			}
		})
	}
}

package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	driver "github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/link"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// startPooledEdge is a MySQL edge in front of the real pool side (pool/mysql) and the
// test's MariaDB, in one process as `slipstream serve` runs them.
func startPooledEdge(t testing.TB, pcfg mysqlpool.Config, dbs ...Database) string {
	t.Helper()
	return startPooledEdgeWith(t, Config{}, pcfg, dbs...)
}

// startPooledEdgeWith is startPooledEdge with the edge's cache and metrics from cfg.
func startPooledEdgeWith(t testing.TB, cfg Config, pcfg mysqlpool.Config, dbs ...Database) string {
	t.Helper()
	_, addr := servePooledEdge(t, cfg, pcfg, dbs...)
	return addr
}

// servePooledEdge is startPooledEdgeWith, returning the edge too.
func servePooledEdge(t testing.TB, cfg Config, pcfg mysqlpool.Config, dbs ...Database) (*Server, string) {
	t.Helper()
	srv := newPooledEdge(t, cfg, pcfg, dbs...)
	return srv, serveMySQLOn(t, srv)
}

// newPooledEdge is a MySQL edge of dbs in front of pools of its own (pool/mysql) on the
// test's MariaDB, not serving yet.
func newPooledEdge(t testing.TB, cfg Config, pcfg mysqlpool.Config, dbs ...Database) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	origins := map[string]link.Origin{}
	for i := range dbs {
		c := pcfg
		c.Name, c.Origin, c.Logger = dbs[i].Name, mysrv.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB), logger
		p, err := mysqlpool.New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		origins[dbs[i].Name] = p.Origin()
		dbs[i].Protocol = ProtocolMySQL
	}
	cfg.Databases, cfg.Transport, cfg.Logger, cfg.TLS = dbs, tunnel.NewLocal(origins), logger, testTLS(t)
	return New(cfg)
}

// serveMySQLOn serves srv's MySQL clients on a free loopback port until the test ends, and
// returns the address.
func serveMySQLOn(t testing.TB, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeMySQL(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeMySQL: %v", err)
		}
	})
	return ln.Addr().String()
}

func openDSN(t testing.TB, addr, user, password, db, params string) *sql.DB {
	t.Helper()
	conn, err := sql.Open("mysql", user+":"+password+"@tcp("+addr+")/"+db+"?timeout=5s"+params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestMySQLThroughThePoolSide(t *testing.T) {
	shop := Database{Name: "shop", User: "edgeuser", Password: "edge-pw", MySQLAuth: mysqlwire.CachingSHA2Password}
	addr := startPooledEdge(t, mysqlpool.Config{MaxConns: 2}, shop)

	for _, params := range []string{"", "&interpolateParams=true&multiStatements=true", "&tls=skip-verify"} {
		t.Run("go-sql-driver with "+params, func(t *testing.T) {
			db := openDSN(t, addr, "edgeuser", "edge-pw", "shop", params)
			c := ctx(t)
			if _, err := db.ExecContext(c, "CREATE TABLE IF NOT EXISTS items (id int primary key, name text)"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(c, "REPLACE INTO items VALUES (?, ?)", 1, "one"); err != nil {
				t.Fatal(err)
			}
			var name, dbname string
			if err := db.QueryRowContext(c, "SELECT name, DATABASE() FROM items WHERE id = ?", 1).Scan(&name, &dbname); err != nil || name != "one" {
				t.Fatalf("prepared select: %v %q", err, name)
			}
			if dbname != mytest.AppDB {
				t.Fatalf("the session is in %q, want the origin's database %q", dbname, mytest.AppDB)
			}
			tx, err := db.BeginTx(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(c, "UPDATE items SET name = 'uno' WHERE id = 1"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(c, "SELECT name FROM items WHERE id = 1").Scan(&name); err != nil || name != "one" {
				t.Fatalf("after rollback: %v %q", err, name)
			}
		})
	}

	t.Run("session variables stay with their client across 2 origin connections", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
				if err != nil {
					errs <- err
					return
				}
				defer cl.Close()
				want := int64(i)
				if _, err := cl.Execute("SET @mine = ?", want); err != nil {
					errs <- err
					return
				}
				for range 5 {
					r, err := cl.Execute("SELECT @mine")
					if err != nil {
						errs <- err
						return
					}
					if got, _ := r.GetInt(0, 0); got != want {
						errs <- fmt.Errorf("client %d sees @mine = %d", i, got)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("KILL QUERY through the pool", func(t *testing.T) {
		victim, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
		if err != nil {
			t.Fatal(err)
		}
		defer victim.Close()
		killer, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
		if err != nil {
			t.Fatal(err)
		}
		defer killer.Close()
		id := victim.GetConnectionID()
		done := make(chan error, 1)
		go func() { _, err := victim.Execute("SELECT SLEEP(30)"); done <- err }()
		deadline := time.After(20 * time.Second)
		for {
			if _, err := killer.Execute("KILL QUERY " + itoa(id)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				if _, err := victim.Execute("SELECT 1"); err != nil {
					t.Fatalf("the victim's session is gone: %v", err)
				}
				return
			case <-deadline:
				t.Fatal("the query was not interrupted")
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func TestMySQLQueueTimeoutThroughThePoolIs1040(t *testing.T) {
	addr := startPooledEdge(t, mysqlpool.Config{MaxConns: 1, QueueTimeout: 200 * time.Millisecond},
		Database{Name: "shop", User: "edgeuser", Password: "edge-pw"})
	holder, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.Execute("BEGIN"); err != nil { // holds the only origin connection
		t.Fatal(err)
	}
	waiter, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	if _, err := waiter.Execute("SELECT 1"); mysqlErrorCode(err) != 1040 {
		t.Fatalf("got %v, want 1040", err)
	}
	if _, err := holder.Execute("COMMIT"); err != nil {
		t.Fatal(err)
	}
	if _, err := waiter.Execute("SELECT 1"); err != nil {
		t.Fatalf("after 1040 the session goes on: %v", err)
	}
}

func TestMySQLLoadDataLocalOnlyWhereAllowed(t *testing.T) {
	driver.RegisterReaderHandler("rows", func() io.Reader { return strings.NewReader("1\tone\n2\ttwo\n") })
	defer driver.DeregisterReaderHandler("rows")
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_local_infile %v", allow), func(t *testing.T) {
			addr := startPooledEdge(t, mysqlpool.Config{AllowLoadLocal: allow},
				Database{Name: "shop", User: "edgeuser", Password: "edge-pw", AllowLocalInfile: allow})
			db := openDSN(t, addr, "edgeuser", "edge-pw", "shop", "")
			db.SetMaxOpenConns(1)
			c := ctx(t)
			table := fmt.Sprintf("infile_%v", allow)
			if _, err := db.ExecContext(c, "CREATE OR REPLACE TABLE "+table+" (id int, name text)"); err != nil {
				t.Fatal(err)
			}
			_, err := db.ExecContext(c, "LOAD DATA LOCAL INFILE 'Reader::rows' INTO TABLE "+table)
			if !allow {
				if err == nil {
					t.Fatal("LOAD DATA LOCAL ran without allow_local_infile")
				}
				if err := db.PingContext(c); err != nil {
					t.Fatalf("the session after the refusal: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRowContext(c, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 2 {
				t.Fatalf("loaded %d rows: %v", n, err)
			}
		})
	}
}

func TestMySQLClientGoneMidQueryFreesItsOriginConnection(t *testing.T) {
	addr := startPooledEdge(t, mysqlpool.Config{MaxConns: 1, QueueTimeout: 10 * time.Second},
		Database{Name: "shop", User: "edgeuser", Password: "edge-pw"})
	gone, _, _ := rawLogin(t, addr, "edgeuser", "edge-pw", "shop")
	if _, err := gone.Write(mysqlwire.AppendPacket(nil, 0, []byte("\x03SELECT SLEEP(20)"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the SLEEP reach the origin
	gone.Close()

	start := time.Now()
	next, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if _, err := next.Execute("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("the next client waited %v for the abandoned SLEEP", waited)
	}
}

func TestMySQLKillConnectionAlsoEndsItsQueryOnTheOrigin(t *testing.T) {
	addr := startPooledEdge(t, mysqlpool.Config{MaxConns: 2}, Database{Name: "shop", User: "edgeuser", Password: "edge-pw"})
	victim, _, _ := rawLogin(t, addr, "edgeuser", "edge-pw", "shop")
	sleep := "SELECT SLEEP(20) /* kill-connection */"
	if _, err := victim.Write(mysqlwire.AppendPacket(nil, 0, append([]byte{0x03}, sleep...))); err != nil {
		t.Fatal(err)
	}
	direct, err := sql.Open("mysql", mysrv.DSN(mytest.AppUser, mytest.AppPassword, mytest.AppDB))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	running := func() int {
		var n int
		if err := direct.QueryRowContext(ctx(t), "SELECT COUNT(*) FROM information_schema.processlist WHERE info = ?", sleep).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for running() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the SLEEP never reached the origin")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The victim's edge id is the last one handed out before the killer's.
	killer, err := client.Connect(addr, "edgeuser", "edge-pw", "shop")
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close()
	if _, err := killer.Execute("KILL CONNECTION " + itoa(killer.GetConnectionID()-1)); err != nil {
		t.Fatal(err)
	}
	for running() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the killed connection's SLEEP still runs on the origin")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

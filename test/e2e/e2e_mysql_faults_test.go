package e2e

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mydiff"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestMySQLClientsLiveThroughKillsAndARestartOfTheOrigin kills every origin connection of the
// app user (MariaDB KILL) twice a second under 16 go-sql-driver/mysql clients, then restarts
// MariaDB. Eight clients run single reads with a think time: they see no error at all (a
// connection killed while idle is replaced, one killed under a read has it sent again). Eight
// run transactions: they see only what MariaDB gives a killed connection, its end without a
// word (the driver's invalid or bad connection), never an error packet of Slipstream's. Each
// client is served within a second of the origin being back. The readers read the table the
// transactions write, so that the cache, invalidated by each commit, sends most reads to the
// origin. It runs a MariaDB of its own.
func TestMySQLClientsLiveThroughKillsAndARestartOfTheOrigin(t *testing.T) {
	ctx := testContext(t, 180*time.Second)
	own, err := mytest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Stop() })
	inst := runServeFor(t, mytest.AppDB, []string{"--mysql-listen", "127.0.0.1:0",
		"--origin", own.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)})
	root := openMySQL(t, mustMySQLConfig(t, own.RootDSN()))
	if _, err := root.ExecContext(ctx, "CREATE TABLE "+mytest.AppDB+".kill_t (id INT PRIMARY KEY, n INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.ExecContext(ctx, "INSERT INTO "+mytest.AppDB+".kill_t VALUES (0, 0)"); err != nil {
		t.Fatal(err)
	}
	const clients = 16
	var counts [2]struct{ queries, errs, other atomic.Int64 } // idle readers, transactions
	var killing atomic.Bool
	killing.Store(true)
	var back atomic.Int64 // unix nanoseconds at which MariaDB accepted connections again
	served := make([]time.Time, clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		db := openMySQL(t, inst.mysqlConfig(t))
		db.SetMaxOpenConns(1)
		kind := i % 2
		c := &counts[kind]
		wg.Add(1)
		go func() {
			defer wg.Done()
			unit := func() error {
				var v int
				return db.QueryRowContext(ctx, "SELECT n FROM kill_t WHERE id = 0").Scan(&v)
			}
			if kind == 1 {
				unit = func() error { return mysqlTransaction(ctx, db, i) }
			}
			served[i] = mysqlClient(ctx, stop, &back, unit, func(err error) {
				if !killing.Load() {
					return // the origin is down: a direct client fails too
				}
				c.queries.Add(1)
				if err == nil {
					return
				}
				c.errs.Add(1)
				if kind == 0 || !errors.Is(err, mysql.ErrInvalidConn) && !errors.Is(err, driver.ErrBadConn) {
					c.other.Add(1)
					t.Logf("client %d: %v", i, err)
				}
			})
		}()
	}
	kills := 0
	tick := time.NewTicker(500 * time.Millisecond)
	for range 6 {
		<-tick.C
		kills += killMySQLApp(t, ctx, root)
	}
	tick.Stop()
	killing.Store(false)
	idle, tx := &counts[0], &counts[1]
	t.Logf("killed %d origin connections in 6 rounds; readers: %d reads, %d errors; transactions: %d, %d ended with their connection, %d other errors",
		kills, idle.queries.Load(), idle.errs.Load(), tx.queries.Load(), tx.errs.Load()-tx.other.Load(), tx.other.Load())
	if idle.errs.Load() != 0 {
		var lines []string
		for _, l := range strings.Split(inst.stderr.String(), "\n") {
			if strings.Contains(l, "again") || strings.Contains(l, "origin") {
				lines = append(lines, l)
			}
		}
		t.Errorf("readers outside transactions saw %d errors, want none; serve said:\n%s", idle.errs.Load(), strings.Join(lines, "\n"))
	}
	if tx.other.Load() != 0 {
		t.Errorf("transactions saw %d errors MariaDB does not give a killed connection", tx.other.Load())
	}
	if idle.queries.Load() == 0 || tx.queries.Load() == 0 {
		t.Fatalf("the clients ran nothing while the origin's connections were killed")
	}
	if err := own.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	back.Store(time.Now().UnixNano())
	close(stop)
	wg.Wait()
	origin := time.Unix(0, back.Load())
	var worst time.Duration
	for i, at := range served {
		if at.IsZero() {
			t.Fatalf("client %d was never served after MariaDB came back", i)
		}
		worst = max(worst, at.Sub(origin))
	}
	t.Logf("%d clients, the last served %v after MariaDB accepted connections again", clients, worst)
	if worst > time.Second {
		t.Errorf("the last client was served %v after the origin came back, want within 1s", worst)
	}
}

// mysqlTransaction runs one short read-write transaction of client i.
func mysqlTransaction(ctx context.Context, db *sql.DB, i int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO kill_t VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1", i); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT n FROM kill_t WHERE id = ?", i).Scan(&n); err != nil {
		return err
	}
	return tx.Commit()
}

// TestMySQLAConnectionKilledInATransactionEndsAsMariaDBEndsIt: a client inside a transaction
// whose connection is killed (KILL CONNECTION of its origin connection) gets, for its next
// command, what a direct client of MariaDB gets: no packet, the end of the connection.
func TestMySQLAConnectionKilledInATransactionEndsAsMariaDBEndsIt(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	my := mariaDB(t)
	inst := startMySQLServe(t)
	root := openMySQL(t, mustMySQLConfig(t, my.RootDSN()))
	o := mydiff.Options{User: mytest.AppUser, Password: mytest.AppPassword, DB: mytest.AppDB, Caps: mydiff.DefaultCaps}
	for i, target := range []struct{ name, addr string }{{"directly", my.Addr()}, {"through slipstream", inst.mysqlAddr(t)}} {
		c, err := mydiff.Dial(ctx, target.addr, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		lock := fmt.Sprintf("h12_killed_%d_%d", os.Getpid(), i)
		for _, q := range []string{"BEGIN", "DO GET_LOCK('" + lock + "', 0)"} {
			if err := c.WritePacket(0, append([]byte{0x03}, q...)); err != nil {
				t.Fatal(err)
			}
			if p, err := c.ReadPacket(); err != nil || len(p.Payload) == 0 || p.Payload[0] != 0 {
				t.Fatalf("%s: %s: %q, %v", target.name, q, p.Payload, err)
			}
		}
		var id int64
		if err := root.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", lock).Scan(&id); err != nil {
			t.Fatalf("%s: the lock's connection: %v", target.name, err)
		}
		if _, err := root.ExecContext(ctx, "KILL CONNECTION ?", id); err != nil {
			t.Fatal(err)
		}
		c.WritePacket(0, append([]byte{0x03}, "SELECT 1"...)) // may fail: the socket is closed
		p, err := c.ReadPacket()
		if len(p.Seqs) != 0 || err == nil {
			t.Errorf("%s: after KILL, the next command drew %q (%v), want the connection's end and nothing else", target.name, p.Payload, err)
		} else {
			t.Logf("%s: after KILL, the next command drew no packet: %v", target.name, err)
		}
	}
}

func mustMySQLConfig(t *testing.T, dsn string) *mysql.Config {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// killMySQLApp kills every connection of the app user and returns how many.
func killMySQLApp(t *testing.T, ctx context.Context, root *sql.DB) int {
	rows, err := root.QueryContext(ctx, "select id from information_schema.processlist where user = ?", mytest.AppUser)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		root.ExecContext(ctx, "KILL CONNECTION ?", id) // it may have ended already
	}
	return len(ids)
}

// mysqlClient runs unit with a think time until stop is closed, telling note how each went,
// then until its first success after back is set, whose time it returns.
func mysqlClient(ctx context.Context, stop chan struct{}, back *atomic.Int64, unit func() error, note func(error)) time.Time {
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for ctx.Err() == nil {
		after := back.Load() != 0
		err := unit()
		if after && err == nil {
			return time.Now()
		}
		select {
		case <-stop:
		default:
			note(err)
		}
		select {
		case <-pace.C:
		case <-ctx.Done():
		}
	}
	return time.Time{}
}

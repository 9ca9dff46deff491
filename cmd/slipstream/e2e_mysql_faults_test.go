package main

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestMySQLClientsLiveThroughKillsAndARestartOfTheOrigin kills every origin connection of the
// app user (MariaDB KILL) twice a second under 16 go-sql-driver/mysql clients that run single
// statements with a think time, then restarts MariaDB: the clients see only errors MariaDB
// itself gives (for a command in flight when its connection was killed), and each is served
// within a second of the origin being back. It runs a MariaDB of its own.
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
	const clients = 16
	var queries, errs atomic.Int64
	var back atomic.Int64 // unix nanoseconds at which MariaDB accepted connections again
	served := make([]time.Time, clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		db := openMySQL(t, inst.mysqlConfig(t))
		db.SetMaxOpenConns(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			served[i] = mysqlClient(ctx, db, stop, &back, &queries, &errs)
		}()
	}
	kills := 0
	tick := time.NewTicker(500 * time.Millisecond)
	for range 6 {
		<-tick.C
		kills += killMySQLApp(t, ctx, root)
	}
	tick.Stop()
	t.Logf("killed %d origin connections in 6 rounds; %d queries, %d errors (commands in flight)", kills, queries.Load(), errs.Load())
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

// mysqlClient runs single statements with a think time until stop is closed, counting queries
// and errors, then until its first success after back is set, whose time it returns.
func mysqlClient(ctx context.Context, db *sql.DB, stop chan struct{}, back, queries, errs *atomic.Int64) time.Time {
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for ctx.Err() == nil {
		after := back.Load() != 0
		var v int
		err := db.QueryRowContext(ctx, "select ?", 1).Scan(&v)
		if after && err == nil {
			return time.Now()
		}
		select {
		case <-stop:
		default:
			queries.Add(1)
			if err != nil {
				errs.Add(1)
			}
		}
		select {
		case <-pace.C:
		case <-ctx.Done():
		}
	}
	return time.Time{}
}

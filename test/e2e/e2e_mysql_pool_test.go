package e2e

// MySQL end-to-end tests of pooling (issue 6): many clients over few origin connections,
// session state that follows its client and never another, sessions pinned by temporary tables
// and locks, the queue timeout, and reads after writes.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestThreeHundredMySQLClientsShareTenOriginConnections connects 300 clients at once to a
// database with max_connections = 10 and has each run prepared statements and transactions,
// while MariaDB's process list shows slipstream never holding more than 10 connections. It is
// not parallel: the process list counts every app connection, and no other test runs beside
// it.
func TestThreeHundredMySQLClientsShareTenOriginConnections(t *testing.T) {
	ctx := testContext(t, 45*time.Second)
	const clients, origins = 300, 10
	inst := startMySQLServeTOML(t, fmt.Sprintf("max_connections = %d", origins), `queue_timeout = "30s"`)
	monitor, err := openMySQL(t, directMySQLConfig(t)).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer monitor.Close()
	table := "crowd_" + suffix()
	if _, err := monitor.ExecContext(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY, n INT)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { openMySQL(t, directMySQLConfig(t)).Exec("DROP TABLE " + table) })

	// The monitor counts the other app connections until the clients are done.
	var peak atomic.Int64
	countOrigin := func() (int64, error) {
		var n int64
		err := monitor.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ? AND id <> CONNECTION_ID()",
			mytest.AppUser).Scan(&n)
		return n, err
	}
	done := make(chan struct{})
	monitored := make(chan error, 1)
	go func() {
		for {
			n, err := countOrigin()
			if err != nil {
				monitored <- err
				return
			}
			if n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				monitored <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	db := openMySQL(t, inst.mysqlConfig(t))
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	var connected, wg sync.WaitGroup
	connected.Add(clients)
	allConnected := make(chan struct{})
	go func() { connected.Wait(); close(allConnected) }()
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(ctx)
			if err != nil {
				connected.Done()
				errs <- fmt.Errorf("client %d: connect: %w", c, err)
				return
			}
			defer conn.Close()
			err = conn.PingContext(ctx)
			connected.Done()
			if err != nil {
				errs <- fmt.Errorf("client %d: ping: %w", c, err)
				return
			}
			// Every client holds its connection until all 300 are in.
			select {
			case <-allConnected:
			case <-ctx.Done():
				errs <- fmt.Errorf("client %d: not all clients connected: %w", c, ctx.Err())
				return
			}
			if err := crowdClient(ctx, conn, table, c); err != nil {
				errs <- fmt.Errorf("client %d: %w", c, err)
			}
		}()
	}
	wg.Wait()
	close(done)
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 5 {
		t.Errorf("... and %d more clients failed", n-5)
	}
	if err := <-monitored; err != nil {
		t.Fatalf("process list: %v", err)
	}
	var rows, sum int
	if err := monitor.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM "+table).Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != clients || sum != 3*clients {
		t.Errorf("the table holds %d rows summing to %d, want %d summing to %d", rows, sum, clients, 3*clients)
	}
	t.Logf("%d clients; at most %d origin connections in MariaDB's process list", clients, peak.Load())
	if p := peak.Load(); p > origins {
		t.Errorf("MariaDB saw %d connections of user app besides the monitor: slipstream opened more than max_connections = %d", p, origins)
	} else if p == 0 {
		t.Errorf("the monitor never saw a connection of slipstream")
	}
}

// crowdClient is one of the 300: a prepared statement, a transaction with a prepared insert
// and updates, and a check of its own row.
func crowdClient(ctx context.Context, conn *sql.Conn, table string, c int) error {
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT ? + 1", c).Scan(&n); err != nil || n != c+1 {
		return fmt.Errorf("SELECT ? + 1: %d, %v", n, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+table+" VALUES (?, 1)", c); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	for range 2 {
		if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET n = n + 1 WHERE id = ?", c); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT n FROM "+table+" WHERE id = ?", c).Scan(&n); err != nil || n != 3 {
		return fmt.Errorf("own row after commit: %d, %v", n, err)
	}
	return nil
}

// TestMySQLSessionStateDoesNotLeakBetweenClients has two clients share one origin connection
// (max_connections = 1): what client A sets (sql_mode, time_zone, a user variable, the
// character set, the current database) follows A and never shows up in client B, which sees
// what a fresh direct connection sees.
func TestMySQLSessionStateDoesNotLeakBetweenClients(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 1", `queue_timeout = "10s"`)
	db, dbA := openMySQL(t, inst.mysqlConfig(t)), openMySQL(t, inst.mysqlConfig(t))
	const state = "SELECT @@session.sql_mode, @@session.time_zone, @leak, DATABASE(), @@session.character_set_client, " +
		"@@session.autocommit, CAST(FROM_UNIXTIME(0) AS CHAR)"
	read := func(t *testing.T, q querier) string {
		t.Helper()
		sets, err := resultSets(ctx, q, state)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(sets)
	}
	fresh := read(t, openMySQL(t, directMySQLConfig(t)))

	a, err := dbA.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := read(t, b); got != fresh {
		t.Fatalf("client B before A set anything: %s\nwant, as directly: %s", got, fresh)
	}
	for _, stmt := range []string{
		"SET @@session.sql_mode = 'ANSI_QUOTES,NO_ZERO_DATE'",
		"SET time_zone = '+05:00'",
		"SET @leak = 'from A'",
		"SET NAMES latin1",
		"USE information_schema",
	} {
		if _, err := a.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("client A: %s: %v", stmt, err)
		}
	}
	want := "[[@@session.sql_mode VARCHAR | @@session.time_zone VARCHAR | @leak LONGTEXT | DATABASE() VARCHAR | " +
		"@@session.character_set_client VARCHAR | @@session.autocommit BIGINT | CAST(FROM_UNIXTIME(0) AS CHAR) VARCHAR " +
		"ANSI_QUOTES,NO_ZERO_DATE | +05:00 | from A | information_schema | latin1 | 1 | 1970-01-01 05:00:00]]"
	for round := range 3 {
		if got := read(t, a); !strings.Contains(got, "ANSI_QUOTES,NO_ZERO_DATE | +05:00 | from A | information_schema | latin1") {
			t.Errorf("round %d: client A lost its session: %s\nwant %s", round, got, want)
		}
		if got := read(t, b); got != fresh {
			t.Errorf("round %d: client B sees A's session: %s\nwant, as directly: %s", round, got, fresh)
		}
		// A prepared statement in each, interleaved: B's must not see A's database either.
		var dbA, dbB string
		if err := a.QueryRowContext(ctx, "SELECT CONCAT(DATABASE(), ?)", "").Scan(&dbA); err != nil || dbA != "information_schema" {
			t.Errorf("round %d: client A's prepared DATABASE(): %q, %v", round, dbA, err)
		}
		if err := b.QueryRowContext(ctx, "SELECT CONCAT(DATABASE(), ?)", "").Scan(&dbB); err != nil || dbB != mytest.AppDB {
			t.Errorf("round %d: client B's prepared DATABASE(): %q, %v", round, dbB, err)
		}
	}
	// A new client after A left sees defaults too.
	a.Close()
	dbA.Close()
	if got := read(t, openMySQL(t, inst.mysqlConfig(t))); got != fresh {
		t.Errorf("a client after A left: %s\nwant, as directly: %s", got, fresh)
	}
}

// TestMySQLTooManyConnectionsWhenNoOriginConnectionFrees: with the only origin connection held
// by a transaction, another client's query waits queue_timeout and gets error 1040 (08004),
// and its session still works afterwards.
func TestMySQLTooManyConnectionsWhenNoOriginConnectionFrees(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 1", `queue_timeout = "300ms"`)
	db := openMySQL(t, inst.mysqlConfig(t))
	a, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	_, err = b.ExecContext(ctx, "SELECT 2")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1040 || string(me.SQLState[:]) != "08004" {
		t.Errorf("client B while A holds the only origin connection: %v; want error 1040 (08004)", err)
	}
	if _, err := a.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRowContext(ctx, "SELECT 3").Scan(&n); err != nil || n != 3 {
		t.Errorf("client B after A committed: %d, %v", n, err)
	}
}

// TestMySQLSessionsKeepTheirOwnStateOverFewOriginConnections: 20 clients over 3 origin
// connections each set their own user variable, time zone, sql_mode and database, then read
// them back many times, interleaved, while the pool moves them between connections.
func TestMySQLSessionsKeepTheirOwnStateOverFewOriginConnections(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 3", `queue_timeout = "20s"`)
	db := openMySQL(t, inst.mysqlConfig(t))
	db.SetMaxOpenConns(20)
	modes := []string{"ANSI_QUOTES", "NO_ZERO_DATE", "PIPES_AS_CONCAT", ""}
	dbs := []string{mytest.AppDB, "information_schema"}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for c := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			tz, mode, database := fmt.Sprintf("+%02d:00", c%13), modes[c%len(modes)], dbs[c%len(dbs)]
			for _, stmt := range []string{
				fmt.Sprintf("SET @me = %d", c),
				"SET time_zone = '" + tz + "'",
				"SET sql_mode = '" + mode + "'",
				"USE " + database,
			} {
				if _, err := conn.ExecContext(ctx, stmt); err != nil {
					errs <- fmt.Errorf("client %d: %s: %w", c, stmt, err)
					return
				}
			}
			want := fmt.Sprintf("%d %s %s %s", c, tz, mode, database)
			for i := range 30 {
				var me int
				var gotTZ, gotMode, gotDB string
				q := "SELECT @me, @@session.time_zone, @@session.sql_mode, DATABASE()"
				var err error
				if i%2 == 0 {
					err = conn.QueryRowContext(ctx, q).Scan(&me, &gotTZ, &gotMode, &gotDB)
				} else { // prepared
					err = conn.QueryRowContext(ctx, q+", ?", i).Scan(&me, &gotTZ, &gotMode, &gotDB, new(int))
				}
				if got := fmt.Sprintf("%d %s %s %s", me, gotTZ, gotMode, gotDB); err != nil || got != want {
					errs <- fmt.Errorf("client %d, read %d: %q, %v; want %q", c, i, got, err, want)
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
}

// TestMySQLTemporaryTablesAndLocksPinTheSession: a client that created a temporary table or
// holds GET_LOCK keeps its origin connection while other clients keep the others busy, so the
// table stays visible to it (and to nobody else) and it can release its lock.
func TestMySQLTemporaryTablesAndLocksPinTheSession(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 3", `queue_timeout = "20s"`)
	db := openMySQL(t, inst.mysqlConfig(t))
	lock := "lock_" + suffix()
	a, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, stmt := range []string{"CREATE TEMPORARY TABLE tmp_pinned (id INT)", "INSERT INTO tmp_pinned VALUES (1)"} {
		if _, err := a.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("client A: %s: %v", stmt, err)
		}
	}
	var got int
	if err := a.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", lock).Scan(&got); err != nil || got != 1 {
		t.Fatalf("client A: GET_LOCK: %d, %v", got, err)
	}

	// Others use the origin connections meanwhile.
	busy, stopBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	others := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for busy.Err() == nil {
				_, err := db.ExecContext(busy, "SELECT * FROM tmp_pinned")
				if mysqlErrno(err) != 1146 && busy.Err() == nil {
					others <- fmt.Errorf("another client reading client A's temporary table: %v; want error 1146", err)
					return
				}
			}
		}()
	}
	for i := range 30 {
		if _, err := a.ExecContext(ctx, "INSERT INTO tmp_pinned VALUES (?)", i); err != nil {
			t.Fatalf("client A, insert %d into its temporary table: %v", i, err)
		}
		var n int
		if err := a.QueryRowContext(ctx, "SELECT COUNT(*) FROM tmp_pinned").Scan(&n); err != nil || n != i+2 {
			t.Fatalf("client A, read %d of its temporary table: %d rows, %v; want %d", i, n, err, i+2)
		}
	}
	var owner sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", lock).Scan(&owner); err != nil || !owner.Valid {
		t.Errorf("another client: IS_USED_LOCK: %v, %v; want the holder's connection id", owner, err)
	}
	stopBusy()
	wg.Wait()
	close(others)
	for err := range others {
		t.Error(err)
	}
	if err := a.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", lock).Scan(&got); err != nil || got != 1 {
		t.Errorf("client A: RELEASE_LOCK: %d, %v; want 1 (A holds it)", got, err)
	}
}

// TestMySQLLastInsertIDIsTheClientsOwn: two clients take turns inserting over one origin
// connection (max_connections = 1); each one's LAST_INSERT_ID() is its own last insert's id,
// as the OK packet of that insert said, not the other client's.
func TestMySQLLastInsertIDIsTheClientsOwn(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 1", `queue_timeout = "10s"`)
	admin := openMySQL(t, directMySQLConfig(t))
	table := "autoinc_" + suffix()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (id INT AUTO_INCREMENT PRIMARY KEY, who CHAR(1))"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE " + table) })
	db := openMySQL(t, inst.mysqlConfig(t))
	clients := map[string]*sql.Conn{}
	for _, who := range []string{"a", "b"} {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[who] = c
	}
	for round := range 3 {
		ids := map[string]int64{}
		for _, who := range []string{"a", "b"} {
			res, err := clients[who].ExecContext(ctx, "INSERT INTO "+table+" (who) VALUES (?)", who)
			if err != nil {
				t.Fatal(err)
			}
			if ids[who], err = res.LastInsertId(); err != nil || ids[who] == 0 {
				t.Fatalf("round %d, client %s: insert id %d, %v", round, who, ids[who], err)
			}
		}
		for _, who := range []string{"a", "b"} {
			var id int64
			if err := clients[who].QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&id); err != nil || id != ids[who] {
				t.Errorf("round %d, client %s: LAST_INSERT_ID() = %d, %v; want its own insert's %d (the other's was %v)", round, who, id, err, ids[who], ids)
			}
		}
	}
}

// TestMySQLClientGoneMidQueryFreesItsOriginConnection: go-sql-driver closes the connection
// when a query's context ends; with max_connections = 1, the next client must not wait for the
// abandoned SELECT SLEEP(5) to finish on the origin.
func TestMySQLClientGoneMidQueryFreesItsOriginConnection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 1", `queue_timeout = "10s"`)
	db := openMySQL(t, inst.mysqlConfig(t))
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := db.ExecContext(qctx, "SELECT SLEEP(5)")
	cancel()
	if err == nil {
		t.Fatal("SELECT SLEEP(5) with a 300ms context: no error")
	}
	start := time.Now()
	var n int
	err = openMySQL(t, inst.mysqlConfig(t)).QueryRowContext(ctx, "SELECT 1").Scan(&n)
	waited := time.Since(start)
	if err != nil || waited > 3*time.Second {
		// What the origin's connections do now, and what serve logged, for whoever debugs it.
		procs, _ := resultSets(ctx, openMySQL(t, directMySQLConfig(t)),
			"SELECT id, command, time, state, info FROM information_schema.processlist WHERE user = ? AND id <> CONNECTION_ID()", mytest.AppUser)
		t.Errorf("the next client's SELECT 1 after %v: %v; want an answer at once, not after the abandoned SLEEP(5)\n"+
			"MariaDB's process list:\n%s\nserve's log:\n%s", waited.Round(time.Millisecond), err, showSets(procs), inst.stderr.String())
	}
}

// TestMySQLReadsSeeEveryWriteMadeThroughSlipstream: with the default caching policy, a client
// that reads a row again after another client changed it through slipstream (text protocol,
// prepared, in a transaction, in a multi-statement query, REPLACE)
// sees the change: a cached answer never outlives a write that went through the same edge.
// (The MySQL edge caches nothing yet; this holds the cache to it when it does.)
func TestMySQLReadsSeeEveryWriteMadeThroughSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServe(t)
	admin := openMySQL(t, directMySQLConfig(t))
	table := "ryw_" + suffix()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, "INSERT INTO "+table+" VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE " + table) })
	readerCfg, writerCfg := inst.mysqlConfig(t), inst.mysqlConfig(t)
	writerCfg.MultiStatements = true
	reader, writer := openMySQL(t, readerCfg), openMySQL(t, writerCfg)
	read := func(t *testing.T, i int) {
		t.Helper()
		var text, prepared int
		err1 := reader.QueryRowContext(ctx, "SELECT v FROM "+table+" WHERE id = 1").Scan(&text)
		err2 := reader.QueryRowContext(ctx, "SELECT v FROM "+table+" WHERE id = ?", 1).Scan(&prepared)
		if err := errors.Join(err1, err2); err != nil || text != i || prepared != i {
			t.Fatalf("after write %d: the reader sees %d (text) and %d (prepared), %v; want %d", i, text, prepared, err, i)
		}
	}
	cur := 0
	update := "UPDATE " + table + " SET v = ? WHERE id = 1"
	for i, write := range []func(v int) error{
		func(v int) error {
			_, err := writer.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET v = %d WHERE id = 1", table, v))
			return err
		},
		func(v int) error { _, err := writer.ExecContext(ctx, update, v); return err },
		func(v int) error {
			tx, err := writer.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, update, v); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		},
		func(v int) error {
			_, err := writer.ExecContext(ctx, fmt.Sprintf("SELECT 1; UPDATE %s SET v = %d WHERE id = 1", table, v))
			return err
		},
		func(v int) error {
			_, err := writer.ExecContext(ctx, fmt.Sprintf("REPLACE INTO %s VALUES (1, %d)", table, v))
			return err
		},
	} {
		for round := range 2 {
			read(t, cur) // cached, if the policy caches it
			v := 10*(i+1) + round
			if err := write(v); err != nil {
				t.Fatalf("write %d: %v", v, err)
			}
			read(t, v)
			cur = v
		}
	}
}

// TestMySQLWarningsAndFoundRowsAnswerAboutTheClientsOwnStatement: SHOW WARNINGS, @@warning_count
// and FOUND_ROWS() right after a statement describe that statement, even while other clients
// keep the two origin connections busy, as they do directly.
func TestMySQLWarningsAndFoundRowsAnswerAboutTheClientsOwnStatement(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 2", `queue_timeout = "10s"`)
	db := openMySQL(t, inst.mysqlConfig(t))
	busy, stopBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for busy.Err() == nil {
				db.ExecContext(busy, "SELECT 1")
			}
		}()
	}
	defer func() { stopBusy(); wg.Wait() }()

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	direct, err := openMySQL(t, directMySQLConfig(t)).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	for i := range 20 {
		for _, step := range []struct{ stmt, then string }{
			{"SELECT 1/0", "SHOW WARNINGS"},
			{"SELECT 1/0, 2/0", "SELECT @@warning_count"},
			{"SELECT SQL_CALC_FOUND_ROWS seq FROM seq_1_to_50 LIMIT 3", "SELECT FOUND_ROWS()"},
		} {
			var got, want [][]string
			for _, c := range []struct {
				q   *sql.Conn
				out *[][]string
			}{{conn, &got}, {direct, &want}} {
				if _, err := resultSets(ctx, c.q, step.stmt); err != nil {
					t.Fatalf("%s: %v", step.stmt, err)
				}
				if *c.out, err = resultSets(ctx, c.q, step.then); err != nil {
					t.Fatalf("%s: %v", step.then, err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d: %s after %s through slipstream:\n%sdirectly:\n%s", i, step.then, step.stmt, showSets(got), showSets(want))
			}
		}
	}
}

// TestMySQLThreeHundredPreparedStatementsInOneSession: one client prepares 300 statements, more
// than an origin connection keeps at once, and runs each of them twice, in order: every one
// answers, prepared again on the origin where it had to be.
func TestMySQLThreeHundredPreparedStatementsInOneSession(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 2")
	conn, err := openMySQL(t, inst.mysqlConfig(t)).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stmts := make([]*sql.Stmt, 300)
	for i := range stmts {
		if stmts[i], err = conn.PrepareContext(ctx, fmt.Sprintf("SELECT ? + %d", i)); err != nil {
			t.Fatalf("prepare %d: %v", i, err)
		}
		defer stmts[i].Close()
	}
	for round := range 2 {
		for i, st := range stmts {
			var n int
			if err := st.QueryRowContext(ctx, round).Scan(&n); err != nil || n != i+round {
				t.Fatalf("round %d, statement %d: %d, %v; want %d", round, i, n, err, i+round)
			}
		}
	}
}

// TestMySQLAWarningDoesNotPinTheOriginConnection: with one origin connection, a client whose
// last statement left a warning (and who then idles, or keeps sending such statements) must
// not keep that connection from the next client for longer than its statements take.
func TestMySQLAWarningDoesNotPinTheOriginConnection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 40*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 1", `queue_timeout = "5s"`)
	db := openMySQL(t, inst.mysqlConfig(t))
	other := func(t *testing.T) {
		t.Helper()
		start := time.Now()
		var n int
		err := openMySQL(t, inst.mysqlConfig(t)).QueryRowContext(ctx, "SELECT 1").Scan(&n)
		if waited := time.Since(start); err != nil || waited > 2*time.Second {
			t.Errorf("another client's SELECT 1 after %v: %v; want an answer at once", waited.Round(time.Millisecond), err)
		}
	}
	t.Run("then idles", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT 1/0"); err != nil {
			t.Fatal(err)
		}
		other(t)
	})
	t.Run("keeps warning", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		busy, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for busy.Err() == nil {
				conn.ExecContext(busy, "SELECT 1/0")
			}
		}()
		other(t)
		stop()
		<-done
	})
}

// TestMySQLOriginLostMidTransactionIsAnErrorNotARetry: when the origin connection under a
// client's transaction dies (here MariaDB kills it), the client's next statement fails, nothing
// of the transaction is committed (no statement is replayed on another connection), and other
// clients go on.
func TestMySQLOriginLostMidTransactionIsAnErrorNotARetry(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 2", `queue_timeout = "10s"`)
	admin := openMySQL(t, directMySQLConfig(t))
	table := "lost_" + suffix()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE " + table) })
	db := openMySQL(t, inst.mysqlConfig(t))
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var thread int64
	for _, stmt := range []string{"BEGIN", "INSERT INTO " + table + " VALUES (1)"} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&thread); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", thread)); err != nil {
		t.Fatalf("KILL CONNECTION %d directly: %v", thread, err)
	}
	_, err = conn.ExecContext(ctx, "INSERT INTO "+table+" VALUES (2)")
	if err == nil {
		t.Errorf("an insert in the transaction whose origin connection was killed succeeded")
	}
	t.Logf("the insert after the kill: %v", err)
	_, err = conn.ExecContext(ctx, "COMMIT")
	t.Logf("COMMIT after the kill: %v", err)
	var n int
	if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil || n != 0 {
		t.Errorf("MariaDB holds %d rows of the killed transaction (%v); want none", n, err)
	}
	if err := openMySQL(t, inst.mysqlConfig(t)).QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Errorf("another client after the kill: %v", err)
	}
}

// TestMySQLTransactionsKeepTheirShape: a stored procedure called inside a transaction does not
// end it (its rows roll back with it), SET TRANSACTION leaves the session's level alone and SET
// SESSION TRANSACTION sets it for every later transaction, READ ONLY holds, while another
// client keeps the other origin connection busy; the same script answers the same directly.
func TestMySQLTransactionsKeepTheirShape(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServeTOML(t, "max_connections = 2", `queue_timeout = "10s"`)
	admin := openMySQL(t, directMySQLConfig(t))
	sfx := suffix()
	table, proc := "shape_"+sfx, "add_row_"+sfx
	for _, stmt := range []string{
		"CREATE TABLE " + table + " (id INT PRIMARY KEY, who VARCHAR(20))",
		"CREATE PROCEDURE " + proc + "(i INT, w VARCHAR(20)) BEGIN INSERT INTO " + table + " VALUES (i, w); SELECT i; END",
	} {
		if _, err := admin.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		admin.Exec("DROP TABLE " + table)
		admin.Exec("DROP PROCEDURE " + proc)
	})
	db := openMySQL(t, inst.mysqlConfig(t))
	busy, stopBusy := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for busy.Err() == nil {
			db.ExecContext(busy, "SELECT 1")
		}
	}()
	defer func() { stopBusy(); wg.Wait() }()

	script := func(t *testing.T, q *sql.Conn, who string, base int) string {
		var seen []string
		step := func(stmt string, args ...any) {
			sets, err := resultSets(ctx, q, stmt, args...)
			if err != nil {
				seen = append(seen, stmt+": error "+fmt.Sprint(mysqlErrno(err)))
				return
			}
			seen = append(seen, stmt+": "+fmt.Sprint(sets))
		}
		step("BEGIN")
		step("INSERT INTO "+table+" VALUES (?, ?)", base+1, who)
		step(fmt.Sprintf("CALL %s(%d, '%s')", proc, base+2, who))
		step("SELECT COUNT(*) FROM "+table+" WHERE who = ?", who)
		step("INSERT INTO "+table+" VALUES (?, ?)", base+3, who)
		step("ROLLBACK")
		step("SELECT COUNT(*) FROM "+table+" WHERE who = ?", who)
		// (@@tx_isolation is the session's level: it can't show that SET TRANSACTION shaped
		// the next transaction, only that it did not change the session's.)
		step("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
		for range 2 {
			step("BEGIN")
			step("INSERT INTO "+table+" VALUES (?, ?)", base+5, who)
			step("SELECT @@tx_isolation, @@in_transaction")
			step("ROLLBACK")
		}
		step("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
		for range 3 {
			step("START TRANSACTION READ ONLY")
			step("SELECT @@tx_isolation, @@in_transaction")
			step("INSERT INTO "+table+" VALUES (?, ?)", base+4, who) // 1792: read-only transaction
			step("COMMIT")
		}
		return strings.Join(seen, "\n")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	direct, err := admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	// Nothing of the script stays committed, so both runs can use the same rows.
	got := script(t, conn, "a", 100)
	want := script(t, direct, "a", 100)
	if got != want {
		t.Errorf("through slipstream:\n%s\n\ndirectly:\n%s", got, want)
	}
}

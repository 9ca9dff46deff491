package main

// MySQL end-to-end tests (issue 6): `slipstream serve --origin mysql://...` in front of the
// package's MariaDB 10.11, driven by go-sql-driver/mysql, the mariadb CLI, mysql2 (node) and,
// where no driver reaches a protocol path (cursors, KILL QUERY by handshake id), go-mysql's
// client. Answers through slipstream are compared with MariaDB's own.

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestGoMySQLDriverWorksThroughSlipstream runs go-sql-driver/mysql with and without
// interpolateParams (text protocol vs COM_STMT_PREPARE/EXECUTE) and multiStatements:
// queries, parameters of every common type, prepared statements shared by goroutines,
// multiple result sets, transactions, errors and a large result, compared with MariaDB.
func TestGoMySQLDriverWorksThroughSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	inst := startMySQLServe(t)
	admin := openMySQL(t, directMySQLConfig(t))
	sfx := suffix()
	table, proc := "gomy_"+sfx, "two_sets_"+sfx
	for _, stmt := range []string{
		"CREATE TABLE " + table + ` (id INT PRIMARY KEY, i BIGINT, u BIGINT UNSIGNED, d DECIMAL(30,10),
			f FLOAT, g DOUBLE, s VARCHAR(100) CHARACTER SET utf8mb4, b BLOB, dt DATETIME(6), dd DATE,
			tm TIME(3), j JSON, e ENUM('red','green'), bits BIT(8), y YEAR)`,
		"CREATE PROCEDURE " + proc + "() BEGIN SELECT 1 AS a; SELECT 'x' AS b, 2.5 AS c; END",
	} {
		if _, err := admin.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		admin.Exec("DROP TABLE " + table)
		admin.Exec("DROP PROCEDURE " + proc)
	})

	for mi, mode := range []struct {
		name               string
		interpolate, multi bool
	}{
		{"prepared", false, false},
		{"prepared,multiStatements", false, true},
		{"interpolateParams", true, false},
		{"interpolateParams,multiStatements", true, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			cfg, dcfg := inst.mysqlConfig(t), directMySQLConfig(t)
			for _, c := range []*mysql.Config{cfg, dcfg} {
				c.InterpolateParams, c.MultiStatements = mode.interpolate, mode.multi
			}
			db, direct := openMySQL(t, cfg), openMySQL(t, dcfg)
			db.SetMaxOpenConns(8)
			lo := 1000 * (mi + 1) // this mode's rows; the directly written copies are at lo+500

			t.Run("literals of every type", func(t *testing.T) {
				sameResults(t, ctx, db, direct, `SELECT 1 AS one, -9223372036854775808 AS minint,
					18446744073709551615 AS maxu, 1.5 AS dec1, CAST('12345678901234567890.1234567890' AS DECIMAL(30,10)) AS d,
					1e300 AS dbl, 'ünïcode ✓' AS s, X'00FF10' AS bin, NULL AS n,
					CAST('2024-02-29 23:59:59.123456' AS DATETIME(6)) AS dt, DATE '2024-02-29' AS dd,
					TIME '-838:59:59' AS tm, JSON_OBJECT('k', 1) AS j, b'101' AS bits`)
			})
			t.Run("parameters of every type", func(t *testing.T) {
				sameResults(t, ctx, db, direct, "SELECT ? AS i, ? AS u, ? AS f, ? AS s, ? AS b, ? AS n, ? AS t, ? AS yes",
					int64(-5), uint64(1<<63+1), 2.25, "it's \\ \"quoted\"", []byte{0, 1, 0xff}, nil,
					time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC), true)
			})
			t.Run("rows written with parameters read back as written directly", func(t *testing.T) {
				insert := "INSERT INTO " + table + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
				rows := [][]any{
					{int64(-1 << 62), uint64(1<<64 - 1), "-12345678901234567890.0123456789", float32(1.25), 3.141592653589793,
						"ünïcode ✓ 🚀", []byte{0, 0xff, 0x10, '\'', '\\'}, "2024-02-29 23:59:59.123456", "1999-12-31",
						"-838:59:59.000", `{"a": [1, 2, null]}`, "green", []byte{0x81}, 2024},
					{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
					{int64(0), uint64(0), "0.0000000001", float32(-0.5), -1e-300, "", []byte{}, "1000-01-01 00:00:00", "9999-12-31",
						"00:00:00.001", `[]`, "red", []byte{0}, 1901},
				}
				for i, r := range rows {
					if _, err := db.ExecContext(ctx, insert, append([]any{lo + i}, r...)...); err != nil {
						t.Fatalf("row %d through slipstream: %v", i, err)
					}
					if _, err := direct.ExecContext(ctx, insert, append([]any{lo + 500 + i}, r...)...); err != nil {
						t.Fatalf("row %d directly: %v", i, err)
					}
				}
				cols := "i, u, d, f, g, s, b, dt, dd, tm, j, e, bits, y"
				sel := "SELECT " + cols + " FROM " + table + " WHERE id BETWEEN ? AND ? ORDER BY id"
				got, err := resultSets(ctx, db, sel, lo, lo+99)
				if err != nil {
					t.Fatal(err)
				}
				want, err := resultSets(ctx, direct, sel, lo+500, lo+599)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) || len(got[0]) != len(rows)+1 {
					t.Errorf("rows written through slipstream:\n%s\nthe same rows written directly:\n%s", showSets(got), showSets(want))
				}
				// The same rows through both, in the text protocol and in the binary one.
				sameResults(t, ctx, db, direct, "SELECT * FROM "+table+fmt.Sprintf(" WHERE id BETWEEN %d AND %d ORDER BY id", lo, lo+599))
				sameResults(t, ctx, db, direct, "SELECT * FROM "+table+" WHERE id BETWEEN ? AND ? ORDER BY id", lo, lo+599)
			})
			t.Run("a prepared statement used from 8 goroutines", func(t *testing.T) {
				stmt, err := db.PrepareContext(ctx, "SELECT ? * ?, CONCAT(?, 'x')")
				if err != nil {
					t.Fatal(err)
				}
				defer stmt.Close()
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for g := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range 25 {
							var n int
							var s string
							if err := stmt.QueryRowContext(ctx, g, i, "g").Scan(&n, &s); err != nil || n != g*i || s != "gx" {
								errs <- fmt.Errorf("goroutine %d, use %d: %d %q, %v", g, i, n, s, err)
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
			t.Run("multiple result sets", func(t *testing.T) {
				sameResults(t, ctx, db, direct, "CALL "+proc+"()")
				// Without multiStatements both answer 1064; with it, two result sets.
				sameResults(t, ctx, db, direct, "SELECT 1 AS one; SELECT 'two' AS two, 3 AS three")
				sameResults(t, ctx, db, direct, "SELECT seq FROM seq_1_to_3; SELECT * FROM no_such_table_"+sfx)
				if mode.multi {
					sets, err := resultSets(ctx, db, "SELECT 1 AS one; SELECT 'two' AS two, 3 AS three")
					if err != nil || len(sets) != 2 {
						t.Errorf("multi-statement query: %d result sets, %v; want 2", len(sets), err)
					}
				}
			})
			t.Run("transactions commit and roll back", func(t *testing.T) {
				ins := "INSERT INTO " + table + " (id, s) VALUES (?, ?)"
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, ins, lo+100, "rolled back"); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ?", lo+100).Scan(&n); err != nil || n != 1 {
					t.Fatalf("inside the transaction: %d rows, %v; want 1", n, err)
				}
				if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
				if tx, err = db.BeginTx(ctx, nil); err != nil {
					t.Fatal(err)
				}
				stmt, err := tx.PrepareContext(ctx, ins)
				if err != nil {
					t.Fatal(err)
				}
				for i := 101; i <= 103; i++ {
					if _, err := stmt.ExecContext(ctx, lo+i, "committed"); err != nil {
						t.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				var names string
				err = direct.QueryRowContext(ctx, "SELECT COUNT(*), GROUP_CONCAT(DISTINCT s) FROM "+table+
					" WHERE id BETWEEN ? AND ?", lo+100, lo+199).Scan(&n, &names)
				if err != nil || n != 3 || names != "committed" {
					t.Fatalf("after rollback and commit MariaDB holds %d rows named %q (%v), want 3 named committed", n, names, err)
				}
			})
			t.Run("errors leave the connection usable", func(t *testing.T) {
				conn, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				for _, c := range []struct {
					query string
					args  []any
					errno uint16
				}{
					{"INSERT INTO " + table + " (id) VALUES (?)", []any{lo}, 1062}, // lo exists: duplicate key
					{"SELEC 1", nil, 1064},
					{"SELECT * FROM no_such_table_" + sfx + " WHERE id = ?", []any{1}, 1146},
					{"SELECT 1 + ?", []any{1}, 0},
				} {
					_, err := conn.ExecContext(ctx, c.query, c.args...)
					if got := mysqlErrno(err); got != c.errno || (c.errno == 0 && err != nil) {
						t.Errorf("%s: %v; want error %d", c.query, err, c.errno)
					}
				}
			})
			t.Run("a large result streams", func(t *testing.T) {
				for _, args := range [][]any{nil, {0}} {
					q := "SELECT seq, REPEAT('x', 100) FROM seq_1_to_200000"
					if args != nil {
						q += " WHERE seq > ?"
					}
					rows, err := db.QueryContext(ctx, q, args...)
					if err != nil {
						t.Fatal(err)
					}
					sum, n := 0, 0
					for rows.Next() {
						var seq int
						var pad string
						if err := rows.Scan(&seq, &pad); err != nil {
							t.Fatal(err)
						}
						sum += seq
						n++
					}
					if err := rows.Err(); err != nil || n != 200000 || sum != 200000*200001/2 {
						t.Errorf("%s: %d rows summing to %d, %v", q, n, sum, err)
					}
					rows.Close()
				}
			})
		})
	}

	t.Run("over TLS", func(t *testing.T) {
		cfg := inst.mysqlConfig(t)
		cfg.TLS = &tls.Config{InsecureSkipVerify: true}
		db := openMySQL(t, cfg)
		var one int
		if err := db.QueryRowContext(ctx, "SELECT ?", 1).Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 over TLS: %d, %v", one, err)
		}
	})
}

// TestMariaDBCLIWorksThroughSlipstream runs the mariadb command-line client through slipstream
// and directly: the same scripts print the same output and exit with the same code.
func TestMariaDBCLIWorksThroughSlipstream(t *testing.T) {
	t.Parallel()
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb: %v (./scripts/test.sh installs mariadb-client)", err)
	}
	ctx := testContext(t, 45*time.Second)
	inst := startMySQLServe(t)
	direct := mariaDB(t).Addr()
	dir := t.TempDir()
	table := "cli_" + suffix()
	run := func(t *testing.T, addr string, args ...string) (string, int) {
		host, port, _ := net.SplitHostPort(addr)
		out, err := runTool(ctx, t, nil, dir, cli, append([]string{"--no-defaults", "-h", host, "-P", port,
			"-u", mytest.AppUser, "-p" + mytest.AppPassword}, append(args, mytest.AppDB)...)...)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("mariadb: %v\n%s", err, out)
		}
		return out, code
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"queries of every type", []string{"-e", `SELECT 40 + 2 AS answer, 'ünïcode' AS s, NULL AS n,
			CAST(1.50 AS DECIMAL(10,2)) AS d, TIMESTAMP '2024-02-29 12:00:00.5' AS ts, X'41FF' AS b, 1e-7 AS f;
			SELECT seq FROM seq_1_to_5`}},
		{"table output", []string{"-t", "-e", "SELECT seq, seq * 2 AS twice FROM seq_1_to_3"}},
		{"batch output without column names", []string{"-B", "-N", "-e", "SELECT 'a\tb', NULL, 'c\\\\d'"}},
		{"a table written and read", []string{"-e", "CREATE TABLE " + table + ` (id INT PRIMARY KEY, v BLOB, d DATETIME);
			INSERT INTO ` + table + ` VALUES (1, X'0001', '2024-01-01 00:00:00'), (2, NULL, NULL);
			UPDATE ` + table + ` SET v = 'x' WHERE id = 2; SELECT ROW_COUNT();
			BEGIN; DELETE FROM ` + table + `; ROLLBACK;
			SELECT * FROM ` + table + ` ORDER BY id; DROP TABLE ` + table}},
		{"USE switches the database", []string{"-e", "USE information_schema; SELECT DATABASE(); USE app; SELECT DATABASE()"}},
		{"an error stops the script", []string{"-e", "SELECT 1; SELECT * FROM no_such_table; SELECT 'not reached'"}},
		{"--force runs past errors", []string{"--force", "-e", "SELEC 1; SELECT 'reached'"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, wantCode := run(t, direct, c.args...)
			got, gotCode := run(t, inst.mysqlAddr(t), c.args...)
			if got != want || gotCode != wantCode {
				t.Errorf("through slipstream (exit %d):\n%s\ndirectly (exit %d):\n%s", gotCode, got, wantCode, want)
			}
		})
	}
	t.Run("--ssl", func(t *testing.T) {
		// The client's status command shows the cipher of the client's own connection.
		out, code := run(t, inst.mysqlAddr(t), "--ssl", "-e", "status")
		if code != 0 || !strings.Contains(out, "Cipher in use") {
			t.Errorf("mariadb --ssl through slipstream (exit %d):\n%s", code, out)
		}
	})
}

// TestMySQL2WorksThroughSlipstream runs test/node/mysql2_smoke.js (mysql2: query, execute,
// a transaction) directly and through slipstream.
func TestMySQL2WorksThroughSlipstream(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (./scripts/test.sh installs it)")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "test", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "mysql2")); err != nil {
		t.Skip("test/node/node_modules is missing (./scripts/test.sh runs npm ci)")
	}
	ctx := testContext(t, 45*time.Second)
	inst := startMySQLServe(t)
	url := func(addr string) string {
		return fmt.Sprintf("mysql://%s:%s@%s/%s", mytest.AppUser, mytest.AppPassword, addr, mytest.AppDB)
	}
	for _, target := range []struct{ name, url string }{
		{"directly", url(mariaDB(t).Addr())},
		{"through slipstream", url(inst.mysqlAddr(t))},
		// mysql2 reads a JSON object from a URL's ssl parameter.
		{"through slipstream over TLS", url(inst.mysqlAddr(t)) + "?ssl=" + neturl.QueryEscape(`{"rejectUnauthorized":false}`)},
	} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			out, err := runTool(ctx, t, nil, dir, node, "mysql2_smoke.js", target.url)
			if err != nil || !strings.Contains(out, "node-mysql2 ok") {
				t.Errorf("node mysql2_smoke.js: %v\n%s", err, out)
			}
		})
	}
}

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

// TestMySQLLoginErrorsCarryMySQLCodes: a wrong password is error 1045 (28000) and an unknown
// database 1049 (42000), through slipstream as directly. (MariaDB answers 1049 only to a user
// with privileges on that name, else 1044, so app gets a grant on the missing database.)
func TestMySQLLoginErrorsCarryMySQLCodes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServe(t)
	const missing = "missing_db"
	root, err := sql.Open("mysql", mariaDB(t).RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, "GRANT ALL ON "+missing+".* TO '"+mytest.AppUser+"'@'%'"); err != nil {
		t.Fatalf("as root: %v", err)
	}
	for _, c := range []struct {
		name     string
		change   func(*mysql.Config)
		errno    uint16
		sqlstate string
	}{
		{"wrong password", func(c *mysql.Config) { c.Passwd = "wrong" }, 1045, "28000"},
		{"no password", func(c *mysql.Config) { c.Passwd = "" }, 1045, "28000"},
		{"unknown user", func(c *mysql.Config) { c.User = "nobody" }, 1045, "28000"},
		{"unknown database", func(c *mysql.Config) { c.DBName = missing }, 1049, "42000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, target := range []struct {
				name string
				cfg  *mysql.Config
			}{{"directly", directMySQLConfig(t)}, {"through slipstream", inst.mysqlConfig(t)}} {
				c.change(target.cfg)
				err := openMySQL(t, target.cfg).PingContext(ctx)
				var me *mysql.MySQLError
				if !errors.As(err, &me) || me.Number != c.errno || string(me.SQLState[:]) != c.sqlstate {
					t.Errorf("%s: %v; want error %d (%s)", target.name, err, c.errno, c.sqlstate)
				}
			}
		})
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

// TestMySQLLoadDataLocalInfileIsRefusedByDefault: a client that offers a local file (go-sql-
// driver with allowAllFiles) loads it directly, but through slipstream, whose configuration
// does not enable LOAD DATA LOCAL, the statement fails and nothing is loaded. With
// allow_local_infile = true it loads through slipstream too.
func TestMySQLLoadDataLocalInfileIsRefusedByDefault(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServe(t)
	file := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(file, []byte("1,one\n2,two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := openMySQL(t, directMySQLConfig(t))
	table := "infile_" + suffix()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY, s TEXT)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE " + table) })
	load := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ','", file, table)
	count := func() int {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	dcfg := directMySQLConfig(t)
	dcfg.AllowAllFiles = true
	if _, err := openMySQL(t, dcfg).ExecContext(ctx, load); err != nil || count() != 2 {
		t.Fatalf("directly (the client side works): %v, %d rows", err, count())
	}
	if _, err := admin.ExecContext(ctx, "DELETE FROM "+table); err != nil {
		t.Fatal(err)
	}

	cfg := inst.mysqlConfig(t)
	cfg.AllowAllFiles = true
	db := openMySQL(t, cfg)
	_, err := db.ExecContext(ctx, load)
	if mysqlErrno(err) == 0 || count() != 0 {
		t.Errorf("LOAD DATA LOCAL through slipstream: %v, %d rows loaded; want a MySQL error (such as 1148) and none", err, count())
	}
	t.Logf("refused with: %v", err)
	var n int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Errorf("the session after the refusal: %v", err)
	}

	t.Run("allowed by allow_local_infile", func(t *testing.T) {
		cfg := startMySQLServeTOML(t, "allow_local_infile = true").mysqlConfig(t)
		cfg.AllowAllFiles = true
		db := openMySQL(t, cfg)
		if _, err := db.ExecContext(ctx, load); err != nil || count() != 2 {
			t.Errorf("LOAD DATA LOCAL through slipstream with allow_local_infile: %v, %d rows loaded; want 2", err, count())
		}
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
			t.Errorf("the session after the load: %v", err)
		}
	})
}

// TestMySQLClientsLogInWithEitherAuthMethod logs go-sql-driver (plain and TLS) and the mariadb
// CLI in through slipstream with each auth_method, twice each: caching_sha2_password's first
// login is a full authentication (RSA key exchange without TLS), the next one its fast path.
func TestMySQLClientsLogInWithEitherAuthMethod(t *testing.T) {
	t.Parallel()
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb: %v (./scripts/test.sh installs mariadb-client)", err)
	}
	ctx := testContext(t, 30*time.Second)
	for _, auth := range []string{"caching_sha2_password", "mysql_native_password"} {
		t.Run(auth, func(t *testing.T) {
			t.Parallel()
			inst := startMySQLServeTOML(t, fmt.Sprintf("auth_method = %q", auth))
			for _, tlsOn := range []bool{false, true} {
				for round := range 2 {
					cfg := inst.mysqlConfig(t)
					if tlsOn {
						cfg.TLS = &tls.Config{InsecureSkipVerify: true}
					}
					var user string
					if err := openMySQL(t, cfg).QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user); err != nil {
						t.Errorf("go-sql-driver, TLS %v, login %d: %v", tlsOn, round+1, err)
					}
				}
			}
			host, port, _ := net.SplitHostPort(inst.mysqlAddr(t))
			for round := range 2 {
				out, err := runTool(ctx, t, nil, t.TempDir(), cli, "--no-defaults", "-h", host, "-P", port,
					"-u", mytest.AppUser, "-p"+mytest.AppPassword, "-N", "-e", "SELECT 'in'", mytest.AppDB)
				if err != nil || strings.TrimSpace(out) != "in" {
					t.Errorf("mariadb CLI, login %d: %v\n%s", round+1, err, out)
				}
			}
		})
	}
}

// TestMySQLKillQueryCancelsASleep: `KILL QUERY ID`, with the id a client got in its handshake
// (what the mariadb CLI sends on Ctrl-C), sent on another connection, ends that client's
// SELECT SLEEP(10) at once and leaves its session usable, through slipstream as directly;
// `KILL CONNECTION ID` ends the sleep and the session. go-mysql's client shows the handshake
// id, which go-sql-driver does not.
func TestMySQLKillQueryCancelsASleep(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 40*time.Second)
	inst := startMySQLServe(t)
	for _, kill := range []string{"KILL QUERY", "KILL CONNECTION"} {
		for _, target := range []struct{ name, addr string }{
			{"directly", mariaDB(t).Addr()},
			{"through slipstream", inst.mysqlAddr(t)},
		} {
			t.Run(kill+" "+target.name, func(t *testing.T) {
				sleeper := rawMySQL(t, target.addr)
				killer := openMySQL(t, newMySQLConfig(target.addr, mytest.AppDB))
				if err := killer.PingContext(ctx); err != nil {
					t.Fatal(err)
				}
				type answer struct {
					res string
					err error
				}
				answered := make(chan answer, 1)
				sleep := "SELECT SLEEP(10) /* " + suffix() + " */"
				start := time.Now()
				go func() {
					r, err := sleeper.Execute(sleep)
					if err != nil {
						answered <- answer{err: err}
						return
					}
					v, _ := r.GetString(0, 0)
					answered <- answer{res: v}
				}()
				// Kill once the sleep runs on the origin, as seen in MariaDB's process list.
				err := eventually(ctx, func() error {
					var n int
					if err := killer.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE info = ?", sleep).Scan(&n); err != nil || n == 0 {
						return fmt.Errorf("no SLEEP in the process list (%v)", err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := killer.ExecContext(ctx, fmt.Sprintf("%s %d", kill, sleeper.GetConnectionID())); err != nil {
					t.Fatalf("%s %d: %v", kill, sleeper.GetConnectionID(), err)
				}
				select {
				case a := <-answered:
					t.Logf("SLEEP(10) ended after %v with %q, %v", time.Since(start).Round(time.Millisecond), a.res, a.err)
					switch {
					case kill == "KILL CONNECTION" && a.err == nil:
						t.Errorf("the SLEEP(10) of a killed connection returned %q; want an error", a.res)
					case kill == "KILL QUERY" && a.err == nil && a.res != "1":
						t.Errorf("the killed SLEEP(10) returned %q; want 1 (interrupted) or error 1317", a.res)
					case kill == "KILL QUERY" && a.err != nil && !strings.Contains(a.err.Error(), "1317"):
						t.Errorf("the killed SLEEP(10): %v; want error 1317 or the result 1", a.err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("SELECT SLEEP(10) still running 5s after %s %d", kill, sleeper.GetConnectionID())
				}
				// And the origin is not left sleeping.
				gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				err = eventually(gctx, func() error {
					var n int
					if err := killer.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE info = ?", sleep).Scan(&n); err != nil || n != 0 {
						return fmt.Errorf("%d SLEEPs in the process list (%v)", n, err)
					}
					return nil
				})
				if err != nil {
					t.Errorf("after %s: %v", kill, err)
				}
				r, err := sleeper.Execute("SELECT 'alive'")
				switch {
				case kill == "KILL CONNECTION" && err == nil:
					t.Errorf("the killed connection still answers queries")
				case kill == "KILL QUERY" && err != nil:
					t.Errorf("the killed query's session: %v", err)
				case kill == "KILL QUERY":
					if v, _ := r.GetString(0, 0); v != "alive" {
						t.Errorf("the killed query's session answered %q", v)
					}
				}
			})
		}
	}
}

// TestMySQLCursorFetchesRowsInBatches opens a read-only cursor (COM_STMT_EXECUTE with
// CURSOR_TYPE_READ_ONLY) and reads it with COM_STMT_FETCH three rows at a time, directly and
// through slipstream. No common driver opens cursors by default, so the packets are written here
// on go-mysql's client connection.
func TestMySQLCursorFetchesRowsInBatches(t *testing.T) {
	t.Parallel()
	inst := startMySQLServe(t)
	for _, target := range []struct{ name, addr string }{
		{"directly", mariaDB(t).Addr()},
		{"through slipstream", inst.mysqlAddr(t)},
	} {
		t.Run(target.name, func(t *testing.T) {
			c := rawMySQL(t, target.addr)
			got, err := cursorFetch(c, "SELECT seq FROM seq_1_to_10 WHERE seq > ?", 3, 3)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != "[[4 5 6] [7 8 9] [10]]" {
				t.Errorf("fetched %v, want [[4 5 6] [7 8 9] [10]]", got)
			}
			if r, err := c.Execute("SELECT 'after the cursor'"); err != nil {
				t.Errorf("the session after the cursor: %v", err)
			} else if v, _ := r.GetString(0, 0); v != "after the cursor" {
				t.Errorf("the session after the cursor answered %q", v)
			}
		})
	}
}

// TestMySQLProtocolCommandsWorkThroughSlipstream covers the commands besides queries and
// statements that drivers send: COM_PING, COM_INIT_DB, COM_FIELD_LIST, COM_RESET_CONNECTION
// (go-mysql's client, raw where it has no method) and COM_STMT_SEND_LONG_DATA (go-sql-driver
// sends a parameter larger than a quarter of its max_allowed_packet that way), each answered
// as MariaDB answers it.
func TestMySQLProtocolCommandsWorkThroughSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	inst := startMySQLServe(t)
	admin := openMySQL(t, directMySQLConfig(t))
	table := "cmds_" + suffix()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', b LONGBLOB)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE " + table) })

	// commands runs the sequence on a fresh go-mysql connection to addr and describes what it saw.
	commands := func(t *testing.T, addr string) string {
		c := rawMySQL(t, addr)
		var seen []string
		note := func(what string, err error, v ...any) {
			if err != nil {
				v = append(v, "error: "+err.Error())
			}
			seen = append(seen, fmt.Sprintf("%s: %v", what, v))
		}
		note("ping", c.Ping())
		fields, err := c.FieldList(table, "")
		var names []string
		for _, f := range fields {
			names = append(names, fmt.Sprintf("%s %d %q", f.Name, f.Type, f.DefaultValue))
		}
		note("field list", err, names)
		_, err = c.Execute("SET @x = 'set', @@session.sql_mode = 'ANSI_QUOTES'")
		note("set", err)
		note("init db", c.UseDB("information_schema"))
		r, err := c.Execute("SELECT DATABASE(), @x, @@session.sql_mode")
		if err == nil {
			d, _ := r.GetString(0, 0)
			x, _ := r.GetString(0, 1)
			m, _ := r.GetString(0, 2)
			note("after init db", nil, d, x, m)
		} else {
			note("after init db", err)
		}
		if err = command(c, []byte{0, 0, 0, 0, gomysql.COM_RESET_CONNECTION}); err == nil {
			_, err = readPacket(c)
		}
		note("reset connection", err)
		r, err = c.Execute("SELECT DATABASE(), @x IS NULL, @@session.sql_mode")
		if err == nil {
			d, _ := r.GetString(0, 0)
			x, _ := r.GetInt(0, 1)
			m, _ := r.GetString(0, 2)
			note("after reset", nil, d, x, m)
		} else {
			note("after reset", err)
		}
		note("ping after reset", c.Ping())
		return strings.Join(seen, "\n")
	}
	want := commands(t, mariaDB(t).Addr())
	if got := commands(t, inst.mysqlAddr(t)); got != want {
		t.Errorf("through slipstream:\n%s\ndirectly:\n%s", got, want)
	}

	t.Run("COM_STMT_SEND_LONG_DATA", func(t *testing.T) {
		cfg := inst.mysqlConfig(t)
		cfg.MaxAllowedPacket = 64 << 10 // parameters of 32 KiB and more go as long data
		db := openMySQL(t, cfg)
		blob := make([]byte, 300<<10)
		for i := range blob {
			blob[i] = byte(i * 7)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" (id, b) VALUES (?, ?)", 1, blob); err != nil {
			t.Fatalf("insert a 300 KiB parameter: %v", err)
		}
		var n int
		var sum string
		err := admin.QueryRowContext(ctx, "SELECT LENGTH(b), MD5(b) FROM "+table+" WHERE id = 1").Scan(&n, &sum)
		if err != nil || n != len(blob) || sum != fmt.Sprintf("%x", md5.Sum(blob)) {
			t.Errorf("MariaDB holds %d bytes with MD5 %s (%v); want %d bytes with MD5 %x", n, sum, err, len(blob), md5.Sum(blob))
		}
	})
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
	if err := openMySQL(t, inst.mysqlConfig(t)).QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("the next client's SELECT 1 waited %v for the abandoned SLEEP(5)", waited.Round(time.Millisecond))
	}
	var running int
	err = openMySQL(t, directMySQLConfig(t)).QueryRowContext(ctx,
		"SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(5)'").Scan(&running)
	t.Logf("after %v the abandoned SLEEP(5) runs on the origin %d times (%v)", time.Since(start).Round(time.Millisecond), running, err)
}

// TestMySQLPacketsOver16MiBCrossSlipstream sends and reads a 17 MiB value, so that one logical
// packet spans two wire packets (the second continuing the first) both ways: in a COM_QUERY
// (interpolated), in a COM_STMT_EXECUTE (prepared) and in result rows, text and binary.
func TestMySQLPacketsOver16MiBCrossSlipstream(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 40*time.Second)
	root, err := sql.Open("mysql", mariaDB(t).RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	// New connections, the pool's among them, take the global value.
	if _, err := root.ExecContext(ctx, "SET GLOBAL max_allowed_packet = 64 * 1024 * 1024"); err != nil {
		t.Fatalf("as root: %v", err)
	}
	inst := startMySQLServe(t)
	admin := openMySQL(t, directMySQLConfig(t))
	table := "big_" + suffix()
	if _, err := admin.ExecContext(ctx, "CREATE TABLE "+table+" (id INT PRIMARY KEY, b LONGBLOB)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP TABLE " + table) })
	big := make([]byte, 17<<20)
	for i := range big {
		big[i] = byte(i*13 + i>>16) // no run the server or a codec could shortcut
	}
	want := fmt.Sprintf("%x", md5.Sum(big))

	for i, interpolate := range []bool{true, false} {
		name := "prepared"
		if interpolate {
			name = "interpolated"
		}
		t.Run(name, func(t *testing.T) {
			cfg := inst.mysqlConfig(t)
			cfg.InterpolateParams = interpolate
			cfg.MaxAllowedPacket = 64 << 20
			db := openMySQL(t, cfg)
			if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" VALUES (?, ?)", i, big); err != nil {
				t.Fatalf("insert 17 MiB: %v", err)
			}
			var sum string
			if err := admin.QueryRowContext(ctx, "SELECT MD5(b) FROM "+table+" WHERE id = ?", i).Scan(&sum); err != nil || sum != want {
				t.Errorf("MariaDB holds MD5 %s (%v); want %s", sum, err, want)
			}
			var got []byte
			if err := db.QueryRowContext(ctx, "SELECT b FROM "+table+" WHERE id = ?", i).Scan(&got); err != nil ||
				fmt.Sprintf("%x", md5.Sum(got)) != want {
				t.Errorf("read back through slipstream: %d bytes (%v); want %d with MD5 %s", len(got), err, len(big), want)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
				t.Errorf("the session after: %v", err)
			}
		})
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

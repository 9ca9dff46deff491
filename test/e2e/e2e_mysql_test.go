package e2e

// MySQL end-to-end tests (issue 6): `slipstream serve --origin mysql://...` in front of the
// package's MariaDB 10.11, driven by go-sql-driver/mysql, the mariadb CLI, mysql2 (node) and,
// where no driver reaches a protocol path (cursors, KILL QUERY by handshake id), go-mysql's
// client. Answers through slipstream are compared with MariaDB's own. This file holds the
// drivers' tests; e2e_mysql_pool_test.go pooling's, e2e_mysql_protocol_test.go the protocol's
// corners, e2e_mysql_helpers_test.go what they share.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

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
				// A deadline of its own: this subtest starts when the parent's parallel siblings
				// let it, and 200,000 rows twice take seconds under -race on a loaded machine.
				ctx := testContext(t, 60*time.Second)
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
	node, dir := nodePackage(t, "mysql2")
	ctx := testContext(t, 45*time.Second)
	inst := startMySQLServe(t)
	url := func(addr string) string {
		return fmt.Sprintf("mysql://%s:%s@%s/%s", mytest.AppUser, mytest.AppPassword, addr, mytest.AppDB)
	}
	runSmoke(ctx, t, node, dir, "mysql2_smoke.js", "node-mysql2 ok", []smokeTarget{
		{"directly", url(mariaDB(t).Addr())},
		{"through slipstream", url(inst.mysqlAddr(t))},
		// mysql2 reads a JSON object from a URL's ssl parameter.
		{"through slipstream over TLS", url(inst.mysqlAddr(t)) + "?ssl=" + neturl.QueryEscape(`{"rejectUnauthorized":false}`)},
	})
}

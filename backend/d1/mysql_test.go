package d1

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver"
	"github.com/slipstream-proxy/slipstream/backend/mysqlserver/mysqltest"
)

// mysqlOpen returns a database/sql handle on db through go-sql-driver/mysql over DialMySQL.
func mysqlOpen(t *testing.T, db *DB, interpolate bool) *sql.DB {
	return mysqltest.Open(t, db.DialMySQL, db.Name(), interpolate)
}

// eachMySQLMode runs f with and without interpolateParams (text protocol only, or prepared
// statements in the binary protocol).
func eachMySQLMode(t *testing.T, f func(t *testing.T, sdb *sql.DB)) {
	for _, interpolate := range []bool{false, true} {
		name := "prepared"
		if interpolate {
			name = "interpolated"
		}
		t.Run(name, func(t *testing.T) { f(t, mysqlOpen(t, openDB(t), interpolate)) })
	}
}

func TestMySQLDriverRoundTripsEveryType(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		if _, err := sdb.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, f REAL, b BLOB, n INTEGER)`); err != nil {
			t.Fatal(err)
		}
		blob := []byte("\x00it's\xff\\x'")
		res, err := sdb.ExecContext(ctx, `INSERT INTO t (id, s, f, b, n) VALUES (?, ?, ?, ?, ?)`, 7, "seven 'é' \\n", 7.5, blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("rows affected = %d, want 1", n)
		}
		if id, _ := res.LastInsertId(); id != 7 {
			t.Errorf("last insert id = %d, want 7", id)
		}
		var (
			id int64
			s  string
			f  float64
			b  []byte
			n  sql.NullInt64
		)
		if err := sdb.QueryRowContext(ctx, `SELECT id, s, f, b, n FROM t WHERE id = ?`, 7).Scan(&id, &s, &f, &b, &n); err != nil {
			t.Fatal(err)
		}
		if id != 7 || s != "seven 'é' \\n" || f != 7.5 || !bytes.Equal(b, blob) || n.Valid {
			t.Errorf("got %d %q %v %q %v", id, s, f, b, n)
		}
		var typeofB string
		if err := sdb.QueryRowContext(ctx, `SELECT typeof(b) FROM t WHERE b = ?`, blob).Scan(&typeofB); err != nil || typeofB != "blob" {
			t.Errorf("the []byte parameter is stored as %q (%v), want blob", typeofB, err)
		}
		rows, err := sdb.QueryContext(ctx, `SELECT id, s, f, b, n, 1 + 1 AS two, NULL AS nul FROM t`)
		if err != nil {
			t.Fatal(err)
		}
		types, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ct := range types {
			got = append(got, ct.DatabaseTypeName())
		}
		if want := "BIGINT VARCHAR DOUBLE BLOB BIGINT BIGINT VARCHAR"; strings.Join(got, " ") != want {
			t.Errorf("column types = %v, want %s", got, want)
		}
		rows.Close()
	})
}

func TestMySQLDriverCommitsAndRollsBack(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		if _, err := sdb.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		for _, commit := range []bool{false, true} {
			tx, err := sdb.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (?)`, 1); err != nil {
				t.Fatal(err)
			}
			// A failed statement leaves a MySQL transaction open.
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (?)`, 1); err == nil {
				t.Fatal("duplicate key accepted")
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			var count int
			if err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&count); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 0, true: 1}[commit]; count != want {
				t.Errorf("commit=%v: count = %d, want %d", commit, count, want)
			}
		}
	})
}

func TestMySQLErrorsCarryMySQLCodes(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		if _, err := sdb.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := sdb.ExecContext(ctx, `INSERT INTO t VALUES (?, ?)`, 1, "one"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			sql   string
			args  []any
			code  uint16
			state string
		}{
			{"a syntax error is 1064", `SELEC 1`, nil, 1064, "42000"},
			{"a missing table is 1146", `SELECT * FROM nope`, nil, 1146, "42S02"},
			{"a missing column is 1054", `SELECT nope FROM t`, nil, 1054, "42S22"},
			{"a duplicate key is 1062", `INSERT INTO t VALUES (?, ?)`, []any{1, "again"}, 1062, "23000"},
			{"a NULL in a NOT NULL column is 1048", `INSERT INTO t VALUES (?, ?)`, []any{2, nil}, 1048, "23000"},
			{"an existing table is 1050", `CREATE TABLE t (x)`, nil, 1050, "42S01"},
			{"another database is 1049", `USE other`, nil, 1049, "42000"},
			{"an unknown variable is 1193", `SELECT @@no_such_variable`, nil, 1193, "HY000"},
			{"several statements are 1235", `SELECT 1; SELECT 2`, nil, 1235, "42000"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := sdb.ExecContext(ctx, tc.sql, tc.args...)
				var me *mysql.MySQLError
				if !errors.As(err, &me) {
					t.Fatalf("err = %v, want a MySQL error", err)
				}
				if me.Number != tc.code || string(me.SQLState[:]) != tc.state {
					t.Errorf("got %d (%s) %q, want %d (%s)", me.Number, me.SQLState, me.Message, tc.code, tc.state)
				}
			})
		}
		// The session is still usable after each.
		if err := sdb.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMySQLErrorMappingCoversSQLite(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint16
	}{
		{&sqliteError{code: sqlite3.SQLITE_BUSY, msg: "database is locked"}, 1205},
		{&sqliteError{code: sqlite3.SQLITE_BUSY_SNAPSHOT, msg: "database is locked"}, 1213},
		{&sqliteError{code: sqlite3.SQLITE_CONSTRAINT_UNIQUE, msg: "UNIQUE constraint failed: t.id"}, 1062},
		{&sqliteError{code: sqlite3.SQLITE_CONSTRAINT_NOTNULL, msg: "NOT NULL constraint failed: t.s"}, 1048},
		{&sqliteError{code: sqlite3.SQLITE_ERROR, msg: `near "x": syntax error`}, 1064},
		{&sqliteError{code: sqlite3.SQLITE_ERROR, msg: "no such table: x"}, 1146},
		{&sqliteError{code: sqlite3.SQLITE_INTERRUPT, msg: "interrupted"}, 1317},
		{errors.New("secret internal detail"), 1105},
	} {
		got, ok := myError(tc.err).(*gomysql.MyError)
		if !ok || got.Code != tc.code {
			t.Errorf("%v: got %v, want code %d", tc.err, got, tc.code)
			continue
		}
		if strings.Contains(got.Message, "secret") {
			t.Errorf("%v: internal text reaches the client", tc.err)
		}
	}
	// Every SQLSTATE that SQLite's result codes map to has a MySQL error of its own.
	for rc, state := range sqlstateByPrimary {
		if !mysqlserver.Mapped(state) {
			t.Errorf("SQLite result code %d: SQLSTATE %s has no MySQL error", rc, state)
		}
	}
	for rc, state := range sqlstateByExtended {
		if !mysqlserver.Mapped(state) {
			t.Errorf("SQLite result code %d: SQLSTATE %s has no MySQL error", rc, state)
		}
	}
	for _, m := range sqlstateByMessage {
		if !mysqlserver.Mapped(m.code) {
			t.Errorf("%q: SQLSTATE %s has no MySQL error", m.prefix, m.code)
		}
	}
}

func TestMySQLAnswersWhatDriversSendAtConnect(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		sdb.SetMaxOpenConns(1) // session variables live on the one connection
		for _, s := range []string{
			`SET NAMES utf8mb4`,
			`SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'`,
			`SET @@session.sql_mode = 'STRICT_TRANS_TABLES'`,
			`SET SESSION wait_timeout = 600, @@session.time_zone = '+02:00'`,
			`SET @marker = 'x'`,
			`SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`,
			`/*!40101 SET character_set_client = utf8 */`,
		} {
			if _, err := sdb.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		for _, tc := range []struct{ sql, want string }{
			{`SELECT @@version_comment LIMIT 1`, "slipstream d1 (SQLite " + "*"},
			{`SELECT @@max_allowed_packet`, "67108864"},
			{`SELECT DATABASE()`, "main"},
			{`SELECT @@session.transaction_isolation`, "READ-COMMITTED"},
			{`SELECT @@tx_isolation`, "READ-COMMITTED"},
			{`SELECT @@sql_mode`, "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES"},
			{`SELECT @@wait_timeout`, "600"},
			{`SELECT @@session.time_zone AS tz`, "+02:00"},
			{`SELECT @marker`, "x"},
			{`SELECT @@autocommit`, "1"},
			{`SELECT @@character_set_client`, "utf8"},
		} {
			var got string
			if err := sdb.QueryRowContext(ctx, tc.sql).Scan(&got); err != nil {
				t.Errorf("%s: %v", tc.sql, err)
				continue
			}
			if got != tc.want && !(strings.HasSuffix(tc.want, "*") && strings.HasPrefix(got, strings.TrimSuffix(tc.want, "*"))) {
				t.Errorf("%s = %q, want %q", tc.sql, got, tc.want)
			}
		}
		rows, err := sdb.QueryContext(ctx, `SHOW WARNINGS`)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Error("SHOW WARNINGS returned a row")
		}
		rows.Close()
		if err := sdb.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// mysqlClient connects go-mysql's client, which shows the status flags of every answer.
func mysqlClient(t *testing.T, db *DB) *client.Conn {
	t.Helper()
	ctx := testContext(t)
	c, err := client.ConnectWithDialer(ctx, "", "d1", "app", "", db.Name(), db.DialMySQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMySQLStatusFlagsFollowTheTransaction(t *testing.T) {
	db := openDB(t)
	c := mysqlClient(t, db)
	check := func(step string, inTx, autocommit bool) {
		t.Helper()
		if c.IsInTransaction() != inTx || c.IsAutoCommit() != autocommit {
			t.Errorf("after %s: in transaction %v, autocommit %v; want %v, %v", step, c.IsInTransaction(), c.IsAutoCommit(), inTx, autocommit)
		}
	}
	check("the handshake", false, true)
	for _, s := range []struct {
		sql              string
		inTx, autocommit bool
	}{
		{"CREATE TABLE t (id INTEGER PRIMARY KEY)", false, true},
		{"BEGIN", true, true},
		{"INSERT INTO t VALUES (1)", true, true},
		{"SELECT * FROM t", true, true},
		{"COMMIT", false, true},
		{"START TRANSACTION READ ONLY", true, true},
		{"ROLLBACK", false, true},
		{"SET autocommit = 0", false, false},
		{"INSERT INTO t VALUES (2)", true, false},
		{"COMMIT", false, false},
		{"SELECT * FROM t", true, false},
		{"SET autocommit = 1", false, true},
	} {
		if _, err := c.Execute(s.sql); err != nil {
			t.Fatalf("%s: %v", s.sql, err)
		}
		check(s.sql, s.inTx, s.autocommit)
	}
	r, err := c.Execute("SELECT LAST_INSERT_ID()")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := r.GetInt(0, 0); id != 2 {
		t.Errorf("LAST_INSERT_ID() = %d, want 2", id)
	}
	r, err = c.Execute("SELECT count(*) FROM t")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.GetInt(0, 0); n != 2 {
		t.Errorf("count = %d, want 2", n)
	}
	// A READ ONLY transaction refuses writes.
	if _, err := c.Execute("START TRANSACTION READ ONLY"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute("INSERT INTO t VALUES (3)"); err == nil {
		t.Error("a READ ONLY transaction accepted an INSERT")
	}
	if _, err := c.Execute("ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute("INSERT INTO t VALUES (3)"); err != nil {
		t.Errorf("after the READ ONLY transaction: %v", err)
	}
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := c.UseDB("other"); err == nil {
		t.Error("COM_INIT_DB accepted another database")
	}
	if err := c.UseDB(db.Name()); err != nil {
		t.Error(err)
	}
}

// listenMySQL serves db's MySQL protocol on a loopback TCP port until the test ends.
func listenMySQL(t *testing.T, db *DB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { db.ServeMySQL(ctx, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		cancel()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestMariaDBCLI(t *testing.T) {
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("the mariadb CLI is not installed")
	}
	db := openDB(t)
	host, port, _ := net.SplitHostPort(listenMySQL(t, db))
	script := `CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, b BLOB);
INSERT INTO t VALUES (1, 'it''s', X'00ff');
START TRANSACTION;
INSERT INTO t VALUES (2, 'two', NULL);
ROLLBACK;
SELECT id, s, hex(b) FROM t;
SELECT @@version_comment LIMIT 1;
SELECT nope FROM t;
`
	cmd := exec.CommandContext(testContext(t), bin, "--protocol=TCP", "-h", host, "-P", port, "-u", "app",
		"--skip-ssl", "-A", "--batch", "--force", db.Name())
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	got := string(out)
	if !strings.Contains(got, "1\tit's\t00FF\n") {
		t.Errorf("output lacks the row: %s (%v)", got, err)
	}
	if !strings.Contains(got, "slipstream d1 (SQLite") {
		t.Errorf("output lacks the version comment: %s", got)
	}
	if strings.Contains(got, "two") {
		t.Errorf("a rolled back row is visible: %s", got)
	}
	if !strings.Contains(got, "ERROR 1054 (42S22)") {
		t.Errorf("output lacks the error: %s", got)
	}
}

func TestMySQLResetConnectionEndsTheTransaction(t *testing.T) {
	db := openDB(t)
	c, err := db.DialMySQL(testContext(t), "pipe", "d1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := mysqltest.Handshake(c); err != nil {
		t.Fatal(err)
	}
	// status sends a command and returns the status flags of its OK.
	status := func(cmd byte, body string) uint16 {
		t.Helper()
		if _, err := c.Write(mysqltest.Command(cmd, body)); err != nil {
			t.Fatal(err)
		}
		var h [4]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
		if _, err := io.ReadFull(c, p); err != nil {
			t.Fatal(err)
		}
		if len(p) < 5 || p[0] != 0 || p[1] >= 251 || p[2] >= 251 {
			t.Fatalf("%q: not an OK: %q", body, p)
		}
		return uint16(p[3]) | uint16(p[4])<<8
	}
	const inTrans, autocommit = 0x1, 0x2
	if st := status(0x03, "SET autocommit = 0"); st&(inTrans|autocommit) != 0 {
		t.Errorf("after SET autocommit = 0: status %#x", st)
	}
	if st := status(0x03, "CREATE TABLE t (x)"); st&inTrans == 0 {
		t.Errorf("a statement with autocommit off opened no transaction: status %#x", st)
	}
	if st := status(0x1f, ""); st&(inTrans|autocommit) != autocommit { // COM_RESET_CONNECTION
		t.Errorf("after COM_RESET_CONNECTION: status %#x, want autocommit and no transaction", st)
	}
	if st := status(0x03, "CREATE TABLE t (x)"); st&inTrans != 0 {
		t.Errorf("the CREATE TABLE wasn't rolled back, or autocommit is still off: status %#x", st)
	}
}

func TestMySQLCloseEndsOpenSessions(t *testing.T) {
	db, err := Open(t.TempDir() + "/c.db")
	if err != nil {
		t.Fatal(err)
	}
	sdb := mysqlOpen(t, db, false)
	ctx := testContext(t)
	if err := sdb.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.ExecContext(ctx, `SELECT 1`); err == nil {
		t.Error("a query on a closed DB succeeded")
	}
	if _, err := db.DialMySQL(ctx, "pipe", "d1"); err == nil {
		t.Error("DialMySQL on a closed DB succeeded")
	}
}

func TestMySQLFieldListNamesTheColumns(t *testing.T) {
	db := openDB(t)
	c := mysqlClient(t, db)
	if _, err := c.Execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, b BLOB)"); err != nil {
		t.Fatal(err)
	}
	fs, err := c.FieldList("t", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, string(f.Name))
	}
	if strings.Join(got, ",") != "id,s,b" || fs[0].Type != gomysql.MYSQL_TYPE_LONGLONG || fs[2].Type != gomysql.MYSQL_TYPE_BLOB {
		t.Errorf("fields = %v (%+v)", got, fs)
	}
	if _, err := c.FieldList("nope", ""); err == nil {
		t.Error("COM_FIELD_LIST of a missing table succeeded")
	}
}

func TestMySQLValueLargerThanOnePacket(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		if _, err := sdb.ExecContext(ctx, `CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
			t.Fatal(err)
		}
		// Past 16 MiB a MySQL packet continues in the next one, both ways.
		value := bytes.Repeat([]byte("0123456789abcde\x00"), (17<<20)/16)
		if _, err := sdb.ExecContext(ctx, `INSERT INTO big (id, b) VALUES (?, ?)`, 1, value); err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := sdb.QueryRowContext(ctx, `SELECT b FROM big WHERE id = ?`, 1).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, value) {
			t.Errorf("got %d bytes back, want %d equal ones", len(got), len(value))
		}
	})
}

package e2e

import (
	"database/sql"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"
)

// vitess is the Vitess dialect's test on a PlanetScale MySQL database: the origin, recording
// every command in its general log, sees origin connections reset with COM_RESET_CONNECTION
// and never COM_CHANGE_USER, even for a client's COM_CHANGE_USER; a database name with
// @replica reaches the origin as the client wrote it, and the origin's errors reach the client
// unchanged.
func (w *psWorld) vitess(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	// PlanetScale takes NAME@replica in USE; MariaDB takes it as a database's name when quoted,
	// which shows the name arrives as written.
	if _, err := w.myRoot.ExecContext(ctx, "CREATE DATABASE `shop@replica`"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.myRoot.ExecContext(ctx, "CREATE TABLE `shop@replica`.t (v varchar(20))"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.myRoot.ExecContext(ctx, "INSERT INTO `shop@replica`.t VALUES ('through @replica')"); err != nil {
		t.Fatal(err)
	}
	child, dsn := w.serve(t, "[[database]]\norigin = \"planetscale://acme/shop/main\"\nmax_connections = 1\ncatalog_refresh = \"1h\"\n")
	cred, ok := lastLive(w.fake, "shop")
	if !ok {
		t.Fatal("no live credential of shop")
	}
	if _, err := w.myRoot.ExecContext(ctx, "GRANT SELECT ON `shop@replica`.* TO '"+cred.Username+"'@'%'"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"SET GLOBAL log_output = 'TABLE'", "TRUNCATE mysql.general_log", "SET GLOBAL general_log = 1"} {
		if _, err := w.myRoot.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() { w.myRoot.Exec("SET GLOBAL general_log = 0") })

	db, addr := psMySQL(t, dsn, "shop")
	db.SetMaxIdleConns(0) // a session closed ends its client connection
	session := func() *sql.Conn {
		t.Helper()
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Two sessions with different settings on the one origin connection: the second's lease
	// resets it.
	a := session()
	if _, err := a.ExecContext(ctx, "SET SESSION sql_mode = 'ANSI_QUOTES'"); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := a.QueryRowContext(ctx, aQuery).Scan(&mode); err != nil || mode != "ANSI_QUOTES" {
		t.Fatalf("sql_mode %q, %v", mode, err)
	}
	a.Close()
	b := session()
	if err := b.QueryRowContext(ctx, bQuery).Scan(&mode); err != nil || mode == "ANSI_QUOTES" {
		t.Errorf("a new session got sql_mode %q (%v), want the server's default", mode, err)
	}

	// NAME@replica as PlanetScale takes it: unquoted, MariaDB refuses it, and the client gets
	// MariaDB's own error; quoted, it is a database here, and the session uses it.
	direct, err := w.myRoot.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	_, want := direct.ExecContext(ctx, "USE shop@replica")
	_, got := b.ExecContext(ctx, "USE shop@replica")
	var we, ge *mysql.MySQLError
	if !errors.As(want, &we) || !errors.As(got, &ge) || we.Number != ge.Number || we.Message != ge.Message || we.SQLState != ge.SQLState {
		t.Errorf("USE shop@replica through slipstream: %v, want the origin's %v", got, want)
	}
	if _, err := b.ExecContext(ctx, "USE `shop@replica`"); err != nil {
		t.Fatalf("USE `shop@replica`: %v", err)
	}
	var cur, v string
	if err := b.QueryRowContext(ctx, "SELECT DATABASE(), (SELECT v FROM t)").Scan(&cur, &v); err != nil || cur != "shop@replica" || v != "through @replica" {
		t.Errorf("after USE `shop@replica`: database %q, read %q (%v)", cur, v, err)
	}
	b.Close()

	// A client's COM_CHANGE_USER: the edge authenticates it and the pool side starts afresh,
	// with a reset, not a COM_CHANGE_USER of its own.
	raw := rawPlanetScale(t, addr)
	if _, err := raw.Execute("SET SESSION sql_mode = 'ANSI_QUOTES'"); err != nil {
		t.Fatal(err)
	}
	if p := changeUserPacket(t, raw, "slipstream", "shop"); p[0] != gomysql.OK_HEADER {
		t.Fatalf("COM_CHANGE_USER through slipstream: %q", p)
	}
	if r, err := raw.Execute("SELECT @@session.sql_mode"); err != nil {
		t.Fatal(err)
	} else if s, _ := r.GetString(0, 0); s == "ANSI_QUOTES" {
		t.Errorf("after COM_CHANGE_USER the session kept sql_mode %q", s)
	}
	raw.Close()

	if _, err := w.myRoot.ExecContext(ctx, "SET GLOBAL general_log = 0"); err != nil {
		t.Fatal(err)
	}
	// The general log records COM_CHANGE_USER ("Change user") but not COM_RESET_CONNECTION:
	// session b ran on a's origin connection (thread), after a's SET and last query, with no
	// command logged in between, and saw the default sql_mode: the pool reset the connection
	// with the one command the log leaves out.
	type entry struct{ thread, cmd, arg string }
	var log []entry
	rows, err := w.myRoot.QueryContext(ctx, "SELECT thread_id, command_type, argument FROM mysql.general_log WHERE user_host LIKE ? ORDER BY event_time", cred.Username+"%")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e entry
		rows.Scan(&e.thread, &e.cmd, &e.arg)
		log = append(log, e)
	}
	rows.Close()
	setAt, bAt := -1, -1
	for i, e := range log {
		if e.cmd == "Change user" {
			t.Errorf("the origin received COM_CHANGE_USER: %v", e)
		}
		if setAt < 0 && e.arg == aQuery {
			setAt = i
		}
		if bAt < 0 && e.arg == bQuery {
			bAt = i
		}
	}
	if setAt < 0 || bAt < setAt {
		t.Fatalf("the general log lacks a's last query or b's query after it: %v", log)
	}
	if log[bAt].thread != log[setAt].thread {
		t.Errorf("b ran on origin thread %s, a on %s: want one connection (max_connections 1) reused", log[bAt].thread, log[setAt].thread)
	}
	for _, e := range log[setAt+1 : bAt] {
		if e.thread == log[setAt].thread {
			t.Errorf("between a's last query and b's, the origin connection received %v: want only a reset the log does not record", e)
		}
	}
	t.Logf("the origin's general log of slipstream's connections: %v", log)
	w.checkShutdown(t, child, "shop")
}

// aQuery and bQuery are sessions a's last and b's first query, found in the origin's general
// log.
const (
	aQuery = "SELECT @@session.sql_mode AS a"
	bQuery = "SELECT @@session.sql_mode AS b"
)

// psMySQL opens go-sql-driver on the connection string serve printed for database name,
// mysql://slipstream@127.0.0.1:PORT/NAME, and returns it with the address; closed when the test
// ends.
func psMySQL(t *testing.T, dsn, name string) (*sql.DB, string) {
	t.Helper()
	m := regexp.MustCompile(`^mysql://slipstream@(127\.0\.0\.1:\d+)/` + regexp.QuoteMeta(name) + `$`).FindStringSubmatch(dsn)
	if m == nil {
		t.Fatalf("the connection string %q is not mysql://slipstream@127.0.0.1:PORT/%s", dsn, name)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "slipstream", "tcp", m[1], name
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, m[1]
}

// rawPlanetScale connects go-mysql's client to slipstream's MySQL listener at addr as the
// loopback user slipstream, on database shop.
func rawPlanetScale(t *testing.T, addr string) *client.Conn {
	t.Helper()
	c, err := client.ConnectWithTimeout(addr, "slipstream", "", "shop", 10*time.Second)
	if err != nil {
		t.Fatalf("go-mysql client to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// changeUserPacket sends COM_CHANGE_USER for user (no password: the loopback user is let in
// without one) into db, and returns the answer's first packet.
func changeUserPacket(t *testing.T, c *client.Conn, user, db string) []byte {
	t.Helper()
	p := append([]byte{0, 0, 0, 0, gomysql.COM_CHANGE_USER}, user...)
	p = append(p, 0, 0) // the user's end, an empty auth response
	p = append(append(p, db...), 0)
	p = append(p, 45, 0) // utf8mb4_general_ci
	p = append(append(p, gomysql.AUTH_NATIVE_PASSWORD...), 0)
	if err := writeCommand(c, p); err != nil {
		t.Fatal(err)
	}
	answer, err := readPacket(c)
	if err != nil {
		t.Fatalf("COM_CHANGE_USER: %v", err)
	}
	return answer
}

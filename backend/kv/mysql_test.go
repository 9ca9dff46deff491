package kv

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver"
	"github.com/slipstream-proxy/slipstream/backend/mysqlserver/mysqltest"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// mysqlOpen returns a database/sql handle on ns through go-sql-driver/mysql over DialMySQL.
func mysqlOpen(t *testing.T, ns *Namespace, interpolate bool) *sql.DB {
	return mysqltest.Open(t, ns.DialMySQL, ns.Name(), interpolate)
}

func eachMySQLMode(t *testing.T, f func(t *testing.T, sdb *sql.DB)) {
	for _, interpolate := range []bool{false, true} {
		name := "prepared"
		if interpolate {
			name = "interpolated"
		}
		t.Run(name, func(t *testing.T) { f(t, mysqlOpen(t, openNS(t), interpolate)) })
	}
}

func TestMySQLPutGetListDelete(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		value := []byte("\x00it's \\x00\xff")
		res, err := sdb.ExecContext(ctx, "INSERT INTO kv (`key`, value, metadata) VALUES (?, ?, ?), ('user:2', 'two', NULL)", "user:1", value, `{"a":1}`)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			t.Errorf("rows affected = %d, want 2", n)
		}
		if _, err := sdb.ExecContext(ctx, `INSERT INTO kv (key, value, expiration_ttl) VALUES (?, ?, ?)`, "other", []byte("x"), 3600); err != nil {
			t.Fatal(err)
		}
		var (
			got  []byte
			meta sql.NullString
			exp  sql.NullInt64
		)
		if err := sdb.QueryRowContext(ctx, `SELECT value, metadata, expiration FROM kv WHERE key = ?`, "user:1").Scan(&got, &meta, &exp); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, value) || meta.String != `{"a":1}` || exp.Valid {
			t.Errorf("get = %q %v %v", got, meta, exp)
		}
		if err := sdb.QueryRowContext(ctx, `SELECT expiration FROM kv WHERE key = 'other'`).Scan(&exp); err != nil || !exp.Valid {
			t.Errorf("expiration of a key put with a TTL = %v, %v", exp, err)
		}
		list := func(query string, args ...any) string {
			t.Helper()
			rows, err := sdb.QueryContext(ctx, query, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var keys []string
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return strings.Join(keys, ",")
		}
		if got := list(`SELECT key FROM kv WHERE key LIKE ? ORDER BY key`, "user:%"); got != "user:1,user:2" {
			t.Errorf("list = %q", got)
		}
		if got := list(`SELECT key FROM kv WHERE key LIKE 'user:%' AND key > ? ORDER BY key LIMIT ?`, "user:1", 10); got != "user:2" {
			t.Errorf("list from a cursor = %q", got)
		}
		res, err = sdb.ExecContext(ctx, `DELETE FROM kv WHERE key = ?`, "user:1")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("delete affected %d rows, want 1", n)
		}
		if got := list(`SELECT key FROM kv`); got != "other,user:2" {
			t.Errorf("after delete: %q", got)
		}
	})
}

func TestMySQLRefusesWhatKVDoesNotRun(t *testing.T) {
	eachMySQLMode(t, func(t *testing.T, sdb *sql.DB) {
		ctx := testContext(t)
		for _, tc := range []struct {
			sql  string
			code uint16
		}{
			{`UPDATE kv SET value = 'x' WHERE key = 'k'`, 1235},
			{`SELECT key FROM kv WHERE value = 'x'`, 1235},
			{`BEGIN`, 1235},
			{`SET autocommit = 0`, 1235},
			{`INSERT INTO kv (key, value) VALUES ('k', NULL)`, 1048},
			{`SELECT 'unterminated`, 1064},
		} {
			_, err := sdb.ExecContext(ctx, tc.sql)
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != tc.code {
				t.Errorf("%s: err = %v, want %d", tc.sql, err, tc.code)
				continue
			}
			if tc.code == 1235 && tc.sql[0] != 'B' && tc.sql[0] != 'S' && !strings.Contains(me.Message, "supports only") {
				t.Errorf("%s: the message doesn't say what is supported: %s", tc.sql, me.Message)
			}
			if strings.Contains(me.Message, "$1") {
				t.Errorf("%s: the message speaks PostgreSQL: %s", tc.sql, me.Message)
			}
		}
		var v string
		if err := sdb.QueryRowContext(ctx, `SELECT @@version_comment LIMIT 1`).Scan(&v); err != nil || v != "slipstream kv" {
			t.Errorf("@@version_comment = %q, %v", v, err)
		}
		if _, err := sdb.ExecContext(ctx, `COMMIT`); err != nil {
			t.Errorf("COMMIT: %v", err)
		}
	})
}

func TestMySQLErrorMappingCoversKV(t *testing.T) {
	for _, code := range []string{
		codeFeatureNotSupported, codeStringTooLong, codeInvalidLimit,
		codeInvalidParameter, codeInvalidEscape, codeInvalidText, codeBinaryRepresent, codeNotNull,
		codeNoActiveTx, codeSyntaxError, codeDatatypeMismatch, codeUndefinedObject, codeProgramLimit,
		codeAdminShutdown, codeInternal,
		// What package pgserver answers for kv's sessions.
		pgserver.CodeProtocolViolation, pgserver.CodeUnknownStatement, pgserver.CodeUnknownPortal,
		pgserver.CodeDuplicatePortal, pgserver.CodeDuplicateStatement, pgserver.CodeCantChangeParam,
	} {
		if !mysqlserver.Mapped(code) {
			t.Errorf("SQLSTATE %s has no MySQL error", code)
		}
	}
}

func TestMariaDBCLIOnKV(t *testing.T) {
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("the mariadb CLI is not installed")
	}
	ns := openNS(t)
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
			wg.Go(func() { ns.ServeMySQL(ctx, c) })
		}
	})
	defer func() {
		ln.Close()
		cancel()
		wg.Wait()
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	cmd := exec.CommandContext(testContext(t), bin, "--protocol=TCP", "-h", host, "-P", port, "-u", "app",
		"--skip-ssl", "-A", "--batch", "--force", ns.Name())
	cmd.Stdin = strings.NewReader("INSERT INTO kv (`key`, value) VALUES ('a', 'one'), ('b', 'two');\n" +
		"SELECT `key`, value FROM kv WHERE `key` LIKE 'a%';\nUPDATE kv SET value = 'x';\n")
	out, _ := cmd.CombinedOutput()
	if got := string(out); !strings.Contains(got, "a\tone\n") || !strings.Contains(got, "ERROR 1235 (42000)") {
		t.Errorf("output: %s", got)
	}
}

package kv

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestPutGetOverwriteAndDeleteInEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := connect(t, openNS(t), mode)
			ctx := testContext(t)
			value := []byte{0, 1, '\\', 'x', 0xfe, 0xff}
			tag, err := c.Exec(ctx, `INSERT INTO kv (key, value, metadata) VALUES ($1, $2, $3)`, "user:1", value, `{"plan":"pro"}`)
			if err != nil {
				t.Fatal(err)
			}
			if tag.String() != "INSERT 0 1" {
				t.Errorf("tag = %q, want INSERT 0 1", tag)
			}
			var (
				got  []byte
				meta *string
				exp  *int64
			)
			if err := c.QueryRow(ctx, `SELECT value, metadata, expiration FROM kv WHERE key = $1`, "user:1").Scan(&got, &meta, &exp); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, value) || meta == nil || *meta != `{"plan":"pro"}` || exp != nil {
				t.Errorf("get = %x %v %v", got, meta, exp)
			}

			// A put overwrites everything the key held, metadata included.
			if _, err := c.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)`, "user:1", []byte("v2")); err != nil {
				t.Fatal(err)
			}
			var key string
			if err := c.QueryRow(ctx, `SELECT * FROM kv WHERE key = $1`, "user:1").Scan(&key, &got, &meta, &exp); err != nil {
				t.Fatal(err)
			}
			if key != "user:1" || string(got) != "v2" || meta != nil || exp != nil {
				t.Errorf("after overwrite: %q %q %v %v", key, got, meta, exp)
			}

			tag, err = c.Exec(ctx, `DELETE FROM kv WHERE key = $1`, "user:1")
			if err != nil || tag.String() != "DELETE 1" {
				t.Fatalf("delete: %q, %v", tag, err)
			}
			tag, err = c.Exec(ctx, `DELETE FROM kv WHERE key = $1`, "user:1")
			if err != nil || tag.String() != "DELETE 0" {
				t.Fatalf("second delete: %q, %v", tag, err)
			}
			err = c.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, "user:1").Scan(&got)
			if !errors.Is(err, pgx.ErrNoRows) {
				t.Errorf("get after delete: %v, want no rows", err)
			}
		})
	}
}

func TestEdgeValuesRoundTripInEveryQueryExecMode(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"an empty value", "empty", []byte{}},
		{"every byte value", "bytes", all},
		{"a key with quotes and unicode", `it's "ünïcode" 🔑 \x`, []byte("v")},
		{"a key of 512 bytes", strings.Repeat("k", maxKeyLen), []byte("long")},
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := connect(t, openNS(t), mode)
			ctx := testContext(t)
			for _, tt := range tests {
				if _, err := c.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)`, tt.key, tt.value); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				var got []byte
				if err := c.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, tt.key).Scan(&got); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if !bytes.Equal(got, tt.value) || got == nil {
					t.Errorf("%s: got %x, want %x", tt.name, got, tt.value)
				}
			}
		})
	}
}

// keys runs a listing and returns the keys.
func keys(t *testing.T, c *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := c.Query(testContext(t), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return ks
}

func TestListingByPrefixPagesWithCursorAndLimitInEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := connect(t, openNS(t), mode)
			ctx := testContext(t)
			// One INSERT of several rows; "user;" and "user" sort around the prefix.
			if _, err := c.Exec(ctx, `INSERT INTO kv (key, value) VALUES
				('user:3', '\x03'), ('user:1', '\x01'), ('user;', 'x'), ('user', 'x'), ('user:5', '\x05'),
				('user:2', '\x02'), ('user:4', '\x04'), ('a_b', 'x')`); err != nil {
				t.Fatal(err)
			}
			var pages [][]string
			cursor := ""
			for range 5 {
				page := keys(t, c, `SELECT key FROM kv WHERE key LIKE $1 AND key > $2 ORDER BY key LIMIT $3`, "user:%", cursor, int64(2))
				pages = append(pages, page)
				if len(page) < 2 {
					break
				}
				cursor = page[len(page)-1]
			}
			if got := fmt.Sprint(pages); got != "[[user:1 user:2] [user:3 user:4] [user:5]]" {
				t.Errorf("pages = %s", got)
			}
			if got := keys(t, c, `SELECT key FROM kv WHERE key LIKE 'user:%'`); len(got) != 5 {
				t.Errorf("literal prefix: %v", got)
			}
			if got := keys(t, c, `SELECT kv.key FROM public.kv WHERE key > 'user:4' AND key LIKE 'user%' ORDER BY key ASC`); fmt.Sprint(got) != "[user:5 user;]" {
				t.Errorf("cursor before prefix: %v", got)
			}
			if got := keys(t, c, `SELECT "key" FROM "kv" WHERE key LIKE 'a\_%'`); fmt.Sprint(got) != "[a_b]" {
				t.Errorf("escaped underscore: %v", got)
			}
			if got := keys(t, c, `SELECT key FROM kv WHERE key LIKE $1`, "user"); fmt.Sprint(got) != "[user]" {
				t.Errorf("a pattern without %% matches one key: %v", got)
			}
			if got := keys(t, c, `SELECT key FROM kv ORDER BY key LIMIT 3`); fmt.Sprint(got) != "[a_b user user:1]" {
				t.Errorf("all keys, limited: %v", got)
			}
			if got := keys(t, c, `SELECT key FROM kv LIMIT 0`); len(got) != 0 {
				t.Errorf("LIMIT 0: %v", got)
			}
		})
	}
}

func TestAListingLongerThanAPageStreamsInOrder(t *testing.T) {
	ns := openNS(t)
	c := connect(t, ns, pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	var sql strings.Builder
	sql.WriteString(`INSERT INTO kv (key, value) VALUES `)
	const n = 2*pageRows + 500
	for i := range n {
		if i > 0 {
			sql.WriteByte(',')
		}
		fmt.Fprintf(&sql, `('k%05d', 'v')`, i)
	}
	if _, err := c.Exec(ctx, sql.String()); err != nil {
		t.Fatal(err)
	}
	got := keys(t, c, `SELECT key FROM kv`)
	if len(got) != n {
		t.Fatalf("%d keys, want %d", len(got), n)
	}
	for i, k := range got {
		if want := fmt.Sprintf("k%05d", i); k != want {
			t.Fatalf("key %d = %q, want %q", i, k, want)
		}
	}
	if got := keys(t, c, `SELECT key FROM kv WHERE key > $1 LIMIT $2`, "k00998", int64(pageRows+2)); len(got) != pageRows+2 || got[0] != "k00999" {
		t.Errorf("a limit past one page: %d keys from %v", len(got), got[:1])
	}
}

func TestExpiredKeysAreNeverReturnedInEveryQueryExecMode(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			ns := openNS(t)
			c := connect(t, ns, mode)
			ctx := testContext(t)
			now := time.Now().Unix()
			if _, err := c.Exec(ctx, `INSERT INTO kv (key, value, expiration) VALUES ($1, $2, $3), ($4, $5, $6)`,
				"gone", []byte("x"), now-1, "kept", []byte("y"), now+3600); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, `INSERT INTO kv (key, value, expiration_ttl) VALUES ($1, $2, $3)`, "ttl", []byte("z"), int64(600)); err != nil {
				t.Fatal(err)
			}
			// A TTL of 0 expires at once: the key is gone from the second it was put.
			if _, err := c.Exec(ctx, `INSERT INTO kv (key, value, expiration_ttl) VALUES ('ttl0', 'x', 0)`); err != nil {
				t.Fatal(err)
			}
			var b []byte
			if err := c.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, "gone").Scan(&b); !errors.Is(err, pgx.ErrNoRows) {
				t.Errorf("get of an expired key: %v, want no rows", err)
			}
			if got := keys(t, c, `SELECT key FROM kv ORDER BY key`); fmt.Sprint(got) != "[kept ttl]" {
				t.Errorf("listing = %v, want [kept ttl]", got)
			}
			var exp int64
			if err := c.QueryRow(ctx, `SELECT expiration FROM kv WHERE key = $1`, "ttl").Scan(&exp); err != nil {
				t.Fatal(err)
			}
			if exp < now+600 || exp > time.Now().Unix()+600 {
				t.Errorf("expiration from a TTL of 600 s = %d, want now+600 (%d)", exp, now+600)
			}
			if tag, err := c.Exec(ctx, `DELETE FROM kv WHERE key = $1`, "gone"); err != nil || tag.String() != "DELETE 0" {
				t.Errorf("deleting an expired key: %q, %v; want DELETE 0", tag, err)
			}
			// The reads deleted what they found expired.
			var stored int
			if err := ns.db.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&stored); err != nil || stored != 2 {
				t.Errorf("rows stored = %d, %v; want 2 (expired keys deleted lazily)", stored, err)
			}
		})
	}
}

func TestUnsupportedSQLIs0A000InEveryQueryExecMode(t *testing.T) {
	tests := []struct{ name, sql, msg string }{
		{"a query of another table", `SELECT 1`, "supports only"},
		{"an UPDATE", `UPDATE kv SET value = 'x' WHERE key = 'a'`, "unsupported statement"},
		{"DDL", `DROP TABLE kv`, "supports only"},
		{"a condition on value", `SELECT key FROM kv WHERE value = 'x'`, "conditions can test key only"},
		{"descending order", `SELECT key FROM kv ORDER BY key DESC`, "ascending"},
		{"a put without a value", `INSERT INTO kv (key) VALUES ('a')`, "needs key and value"},
		{"ON CONFLICT", `INSERT INTO kv (key, value) VALUES ('a', 'b') ON CONFLICT (key) DO NOTHING`, "always overwrites"},
		{"both expirations", `INSERT INTO kv (key, value, expiration, expiration_ttl) VALUES ('a', 'b', 1, 2)`, "not both"},
		{"an unescaped underscore in LIKE", `SELECT key FROM kv WHERE key LIKE 'a_b%'`, "write \\_"},
		{"a % inside a LIKE pattern", `SELECT key FROM kv WHERE key LIKE '%b'`, "may only end"},
		{"a DELETE without WHERE", `DELETE FROM kv`, "WHERE key = $1"},
		{"a transaction", `BEGIN`, "no transactions"},
		{"another table", `SELECT key FROM other`, "the only table is kv"},
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := connect(t, openNS(t), mode)
			ctx := testContext(t)
			for _, tt := range tests {
				_, err := c.Exec(ctx, tt.sql)
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, tt.msg) {
					t.Errorf("%s: %v; want 0A000 with %q", tt.name, err, tt.msg)
				}
			}
			// The session goes on.
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)`, "a", []byte("b")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBadValuesGetPostgresSQLSTATEs(t *testing.T) {
	c := connect(t, openNS(t), pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	tests := []struct {
		name string
		sql  string
		args []any
		code string
	}{
		{"a NULL key", `INSERT INTO kv (key, value) VALUES ($1, $2)`, []any{nil, []byte("v")}, "23502"},
		{"a NULL value", `INSERT INTO kv (key, value) VALUES ($1, $2)`, []any{"k", nil}, "23502"},
		{"an empty key", `INSERT INTO kv (key, value) VALUES ($1, $2)`, []any{"", []byte("v")}, "22023"},
		{"a key past 512 bytes", `INSERT INTO kv (key, value) VALUES ($1, $2)`, []any{strings.Repeat("k", 513), []byte("v")}, "22001"},
		{"metadata that is not JSON", `INSERT INTO kv (key, value, metadata) VALUES ('k', 'v', '{nope')`, nil, "22P02"},
		{"metadata past 1024 bytes", `INSERT INTO kv (key, value, metadata) VALUES ($1, $2, $3)`, []any{"k", []byte("v"), `"` + strings.Repeat("m", 1024) + `"`}, "54000"},
		{"an expiration that is not a number", `INSERT INTO kv (key, value, expiration) VALUES ('k', 'v', 'soon')`, nil, "22P02"},
		{"a negative TTL", `INSERT INTO kv (key, value, expiration_ttl) VALUES ('k', 'v', -1)`, nil, "22023"},
		{"a negative LIMIT", `SELECT key FROM kv LIMIT $1`, []any{int64(-1)}, "2201W"},
		{"a number as key", `SELECT key FROM kv WHERE key = 5`, nil, "42804"},
		{"a malformed bytea literal", `INSERT INTO kv (key, value) VALUES ('k', '\x0')`, nil, "22P02"},
		{"an unterminated string", `SELECT key FROM kv WHERE key = 'a`, nil, "42601"},
	}
	for _, tt := range tests {
		_, err := c.Exec(ctx, tt.sql, tt.args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tt.code {
			t.Errorf("%s: %v; want SQLSTATE %s", tt.name, err, tt.code)
		}
	}
}

func TestSessionStatementsThePoolSendsAreAnswered(t *testing.T) {
	c := connect(t, openNS(t), pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	// What the pool sends to give a connection a client's settings, in one simple Query.
	setup := "RESET ALL;SELECT pg_catalog.set_config('application_name','app 1',false),pg_catalog.set_config('datestyle','ISO, DMY',false);SET statement_timeout = 5000\n;SET TIME ZONE 'Europe/Paris';SET search_path TO public, \"$user\""
	results, err := c.PgConn().Exec(ctx, setup).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 5 {
		t.Errorf("%d results, want 5", len(results))
	}
	if got := c.PgConn().ParameterStatus("application_name"); got != "app 1" {
		t.Errorf("application_name reported as %q", got)
	}
	for name, want := range map[string]string{"application_name": "app 1", "statement_timeout": "5000", "timezone": "Europe/Paris", "datestyle": "ISO, DMY"} {
		var got string
		if err := c.QueryRow(ctx, "SHOW "+name, pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil || got != want {
			t.Errorf("SHOW %s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, sql := range []string{"RESET ALL", "DISCARD ALL", "DEALLOCATE ALL", "COMMIT", "ROLLBACK", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET LOCAL x.y = 1"} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
	if got := c.PgConn().ParameterStatus("application_name"); got != "" {
		t.Errorf("application_name after RESET ALL = %q", got)
	}
	var pe *pgconn.PgError
	if _, err := c.Exec(ctx, "SET client_encoding = 'LATIN1'"); !errors.As(err, &pe) || pe.Code != "0A000" {
		t.Errorf("a non-UTF8 client_encoding: %v", err)
	}
	if _, err := c.Exec(ctx, "SHOW nope"); !errors.As(err, &pe) || pe.Code != "42704" {
		t.Errorf("SHOW of an unknown parameter: %v", err)
	}
}

func TestPutsSurviveReopening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "durable.kv")
	ns, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, ns, pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	if _, err := c.Exec(ctx, `INSERT INTO kv (key, value, metadata, expiration) VALUES ($1, $2, $3, $4)`, "k", []byte("v"), `[1]`, int64(4102444800)); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	ns, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var (
		v    []byte
		meta string
		exp  int64
	)
	c = connect(t, ns, pgx.QueryExecModeCacheStatement)
	if err := c.QueryRow(ctx, `SELECT value, metadata, expiration FROM kv WHERE key = $1`, "k").Scan(&v, &meta, &exp); err != nil {
		t.Fatal(err)
	}
	if string(v) != "v" || meta != "[1]" || exp != 4102444800 {
		t.Errorf("after reopening: %q %q %d", v, meta, exp)
	}
}

func TestOpenRefusesAFileWithAnotherKVTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	ns, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ns.db.Exec(`DROP TABLE kv; CREATE TABLE kv (k TEXT)`); err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if ns, err := Open(path); err == nil || !strings.Contains(err.Error(), "columns") {
		if ns != nil {
			ns.Close()
		}
		t.Errorf("Open = %v; want an error naming the columns", err)
	}
	if _, err := Open("file:x.db?mode=memory"); err == nil {
		t.Error("Open of a URI succeeded; want a file path only")
	}
}

func TestCloseEndsSessions(t *testing.T) {
	ns, err := Open(filepath.Join(t.TempDir(), "close.kv"))
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, ns, pgx.QueryExecModeCacheStatement)
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(testContext(t)); err == nil {
		t.Error("a session outlived Close")
	}
	if _, err := ns.Dial(testContext(t), "tcp", "kv"); !errors.Is(err, errClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
}

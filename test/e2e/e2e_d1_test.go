package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
)

func TestServeWithNothingConfiguredServesTheEmbeddedD1Database(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dataDir := t.TempDir()
	inst := runServeFor(t, "main", []string{"--data-dir", dataDir})
	url := inst.PGURL
	if !strings.HasPrefix(url, "postgres://slipstream@127.0.0.1:") || !strings.HasSuffix(url, "/main") {
		t.Errorf("connection string %q, want postgres://slipstream@127.0.0.1:PORT/main (no password: loopback only)", url)
	}

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		cfg, err := pgx.ParseConfig(withQuery(url, "sslmode", "disable"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("%v: connect: %v", mode, err)
		}
		if _, err := conn.Exec(ctx, "create table if not exists notes (id integer primary key, body text, score real)"); err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := tx.Exec(ctx, "insert into notes (body, score) values ($1, $2)", mode.String(), float64(i)/2); err != nil {
				t.Fatalf("%v: insert: %v", mode, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		var n int64
		var sum float64
		if err := conn.QueryRow(ctx, "select count(*), sum(score) from notes where body = $1", mode.String()).Scan(&n, &sum); err != nil || n != 5 || sum != 5 {
			t.Errorf("%v: count %d sum %v, %v; want 5 rows summing to 5", mode, n, sum, err)
		}
		conn.Close(ctx)
	}

	if psql, err := exec.LookPath("psql"); err == nil {
		out, err := exec.CommandContext(ctx, psql, withQuery(url, "sslmode", "require"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
			"-c", "select count(*) from notes").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "10" {
			t.Errorf("psql over TLS: %q, %v; want 10", out, err)
		}
	}

	// What was acknowledged is on disk: a new process over the same data directory sees it.
	if code := inst.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	inst = runServeFor(t, "main", []string{"--data-dir", dataDir})
	conn := connect(t, ctx, inst.plainURL())
	var n int64
	if err := conn.QueryRow(ctx, "select count(*) from notes").Scan(&n); err != nil || n != 10 {
		t.Errorf("after a restart: %d rows, %v; want 10", n, err)
	}
}

func TestTheEmbeddedDatabaseNeedsCredentialsBeyondLoopback(t *testing.T) {
	var stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"serve", "--pg-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "auth_method trust lets anyone in") {
		t.Errorf("serve on 0.0.0.0 with nothing configured: exit %d, stderr %q; want exit 2 asking for credentials", code, stderr.String())
	}
}

func TestKVAndTheHTTPAPIsWorkThroughServe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "slipstream.toml")
	toml := `api_token = "test-token"
[[database]]
name = "main"
kind = "d1"
auth_method = "trust"
[[database]]
name = "cfg"
kind = "kv"
auth_method = "trust"
`
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := runServeFor(t, "main", []string{"--config", cfg, "--data-dir", dir})
	kvURL := strings.Replace(inst.plainURL(), "/main?", "/cfg?", 1)

	kvc := connect(t, ctx, kvURL)
	if _, err := kvc.Exec(ctx, "insert into kv (key, value) values ($1, $2)", "greeting", []byte("hello")); err != nil {
		t.Fatalf("KV put over SQL: %v", err)
	}
	var v []byte
	if err := kvc.QueryRow(ctx, "select value from kv where key = $1", "greeting").Scan(&v); err != nil || string(v) != "hello" {
		t.Errorf("KV get over SQL: %q, %v", v, err)
	}
	if _, err := kvc.Exec(ctx, "update kv set value = 'x'"); sqlstate(err) != "0A000" {
		t.Errorf("unsupported KV SQL: %v, want SQLSTATE 0A000", err)
	}
	// The same namespace over the MySQL protocol, on the line serve printed for it.
	var kvMySQL string
	for _, m := range mysqlLine.FindAllStringSubmatch(inst.stdout.String(), -1) {
		if m[1] == "cfg" {
			kvMySQL = m[2]
		}
	}
	if kvMySQL == "" {
		t.Fatalf("serve printed no MySQL line for the KV namespace:\n%s", inst.stdout.String())
	}
	my, err := sql.Open("mysql", mysqlDSN(t, kvMySQL, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	if _, err := my.ExecContext(ctx, "INSERT INTO kv (key, value) VALUES (?, ?)", "farewell", "bye"); err != nil {
		t.Fatalf("KV put over MySQL: %v", err)
	}
	var got string
	if err := my.QueryRowContext(ctx, "SELECT value FROM kv WHERE key = ?", "greeting").Scan(&got); err != nil || got != "hello" {
		t.Errorf("KV get over MySQL of a key put over PostgreSQL: %q, %v", got, err)
	}
	var myErr *mysql.MySQLError
	if _, err := my.ExecContext(ctx, "UPDATE kv SET value = 'x'"); !errors.As(err, &myErr) || myErr.Number != 1235 {
		t.Errorf("unsupported KV SQL over MySQL: %v, want error 1235", err)
	}
	body, code := httpDo(t, "GET", "http://"+inst.HTTP+"/accounts/acc/storage/kv/namespaces/cfg/values/greeting", "test-token", "")
	if code != 200 || body != "hello" {
		t.Errorf("KV REST get: %d %q", code, body)
	}

	// D1 over SQL and over HTTP: a write through HTTP is seen by a cached read over SQL.
	pg := connect(t, ctx, inst.plainURL())
	if _, err := pg.Exec(ctx, "create table t (id integer primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	count := func() (n int64) {
		if err := pg.QueryRow(ctx, "select count(*) from t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	count()
	count() // now cached
	body, code = httpDo(t, "POST", "http://"+inst.HTTP+"/accounts/acc/d1/database/main/query", "test-token",
		`{"sql": "insert into t (v) values (?)", "params": ["from http"]}`)
	if code != 200 || !strings.Contains(body, `"success":true`) {
		t.Fatalf("D1 HTTP query: %d %s", code, body)
	}
	if n := count(); n != 1 {
		t.Errorf("after an insert through the D1 HTTP API, SQL reads %d rows, want 1", n)
	}
	if _, code := httpDo(t, "POST", "http://"+inst.HTTP+"/accounts/acc/d1/database/main/query", "wrong", `{"sql":"select 1"}`); code != 401 {
		t.Errorf("a wrong token got HTTP %d, want 401", code)
	}
}

func httpDo(t *testing.T, method, url, token, body string) (string, int) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	code := run(context.Background(), []string{"serve", "--pg-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, &bytes.Buffer{}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "auth_method trust lets anyone in") {
		t.Errorf("serve on 0.0.0.0 with nothing configured: exit %d, stderr %q; want exit 2 asking for credentials", code, stderr.String())
	}
}

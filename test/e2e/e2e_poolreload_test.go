package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// TestSIGHUPReloadsThePool: `slipstream pool` runs as its own process behind an edge; a
// SIGHUP adds a database, which the edge then reaches through it, and resizes a pool, while a
// session the edge holds on the pool goes on; a file that does not validate keeps the running
// configuration; SIGTERM ends it with exit 0.
func TestSIGHUPReloadsThePool(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	certs := makeCerts(t)
	poolTOML := filepath.Join(t.TempDir(), "pool.toml")
	writePool := func(dbs ...string) {
		t.Helper()
		body := fmt.Sprintf("tunnel_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ncerts_dir = %q\nregion = \"test\"\n%s\n",
			certs, strings.Join(dbs, "\n"))
		if err := os.WriteFile(poolTOML+".new", []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(poolTOML+".new", poolTOML); err != nil {
			t.Fatal(err)
		}
	}
	writePool(appDatabase(pgtest.AppDB, "max_connections = 2"))
	pool := startChild(t, pgtest.AppDB, "pool", "--config", poolTOML, "--data-dir", t.TempDir())
	m := tunnelLine.FindStringSubmatch(pool.stdout.String())
	if m == nil {
		t.Fatalf("no tunnel address in:\n%s", pool.stdout.String())
	}
	// The edge knows both databases from the start; the pool serves app2 after its reload.
	edgeTOML := filepath.Join(t.TempDir(), "edge.toml")
	edgeBody := fmt.Sprintf("certs_dir = %q\n[[pool]]\nname = \"test\"\naddress = %q\n%s\n%s\n", certs, m[1],
		appDatabase(pgtest.AppDB), appDatabase("app2"))
	if err := os.WriteFile(edgeTOML, []byte(edgeBody), 0o600); err != nil {
		t.Fatal(err)
	}
	edge := startNode(t, "edge", "--config", edgeTOML, "--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", t.TempDir())
	appURL := edge.appURL(t)
	app2URL := strings.Replace(appURL, "/"+pgtest.AppDB+"?", "/app2?", 1)

	held := connect(t, ctx, appURL)
	if _, err := held.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, app2URL); err == nil {
		_, err = c.Exec(ctx, "select 1")
		c.Close(ctx)
		if err == nil {
			t.Fatal("the pool served app2 before it was configured")
		}
	}

	writePool(appDatabase(pgtest.AppDB, "max_connections = 3"), appDatabase("app2", "max_connections = 1"))
	pool.signal(t, syscall.SIGHUP)
	pool.notes.wait(t, "RELOADING=1")
	pool.notes.wait(t, "READY=1")
	pool.logSays(t, ctx, "configuration reloaded", "reload: database opened", "db=app2", "reload: pool resized", "max_connections=3")
	if err := eventually(ctx, func() error {
		c, err := pgx.Connect(ctx, app2URL)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "select 41 + 1").Scan(&n); err != nil || n != 42 {
			return fmt.Errorf("app2 through the edge after the pool's reload: %d, %v", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(ctx, "select 1"); err != nil {
		t.Errorf("a session open across the pool's reload: %v", err)
	}

	pool.refusesBadReload(t, ctx, poolTOML)
	if _, err := held.Exec(ctx, "select 1"); err != nil {
		t.Errorf("after a refused reload: %v", err)
	}
	held.Close(ctx)
	pool.signal(t, syscall.SIGTERM)
	pool.wait(t, 20*time.Second)
}

package kv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// modes are every way pgx can run a query; each KV test that goes through pgx runs in all of
// them: prepared and described statements with binary parameters, parameters typed by their Go
// values, and literals interpolated into a simple Query.
var modes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

func openNS(t testing.TB) *Namespace {
	t.Helper()
	ns, err := Open(filepath.Join(t.TempDir(), "data", "cache.kv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// connect reaches ns the way the pool does: pgconn with DialFunc ns.Dial, and a LookupFunc that
// doesn't resolve the placeholder host.
func connect(t testing.TB, ns *Namespace, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("postgres://kv@kv/cache?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = ns.Dial
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

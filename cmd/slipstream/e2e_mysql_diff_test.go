package main

// The MySQL differential wire scripts (internal/mydiff): every script runs against MariaDB
// directly, through `slipstream serve` and through an edge and a pool joined by the QUIC
// tunnel, and the answers must be the database's, packet by packet.

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mydiff"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// mysqlDiffTargets starts serve and an edge+pool pair in front of the package's MariaDB, with
// max_allowed_packet at 64 MiB (as the 16 MiB scripts need), and returns their MySQL
// addresses by name.
func mysqlDiffTargets(t *testing.T, ctx context.Context) (direct string, targets [][2]string) {
	t.Helper()
	my := mariaDB(t)
	root, err := sql.Open("mysql", my.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, "SET GLOBAL max_allowed_packet = 64 * 1024 * 1024"); err != nil {
		t.Fatalf("as root: %v", err)
	}
	serve := startMySQLServe(t)
	pool, certs, origin := startMySQLPool(t)
	edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", certs, "--data-dir", t.TempDir(),
		"--origin", origin)
	return my.Addr(), [][2]string{{"serve", serve.mysqlAddr(t)}, {"edge+pool", edge.mysqlConfigOf(t).Addr}}
}

// TestMySQLWireScriptsAnswerAsMariaDB runs every script of internal/mydiff against MariaDB and
// through Slipstream in both deployment shapes, and reports how many pass.
func TestMySQLWireScriptsAnswerAsMariaDB(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	scripts, err := mydiff.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	direct, targets := mysqlDiffTargets(t, ctx)
	o := mydiff.Options{User: mytest.AppUser, Password: mytest.AppPassword, DB: mytest.AppDB}
	passed := make([]int, len(targets))
	for _, s := range scripts {
		// Sequential: the scripts make and drop tables of fixed names.
		want, err := mydiff.Run(ctx, direct, o, s)
		if err != nil {
			t.Fatalf("script %s against MariaDB: %v", s.Name, err)
		}
		for i, target := range targets {
			ok := t.Run(target[0]+"/"+s.Name, func(t *testing.T) {
				got, err := mydiff.Run(ctx, target[1], o, s)
				if err != nil {
					t.Errorf("through %s: %v", target[0], err)
				}
				if got == nil {
					return
				}
				if d := mydiff.Compare(want, got); len(d) > 0 {
					t.Errorf("through %s, answers differ from MariaDB's:\n%s", target[0], strings.Join(d, "\n"))
				}
			})
			if ok {
				passed[i]++
			}
		}
	}
	for i, target := range targets {
		t.Logf("%s: %d of %d scripts answer as MariaDB", target[0], passed[i], len(scripts))
	}
}

package e2e

import (
	"bytes"
	"database/sql"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// TestMySQLCtrlCInTheMariaDBCLICancelsOnlyItsQuery: Ctrl-C (SIGINT) in the mariadb command-line
// client, which sends KILL QUERY with the thread id of its handshake on a connection of its
// own, interrupts that client's SELECT SLEEP through slipstream as directly, and not another
// client's sleep running at the same time. (The CLI strips comments: the queries are told
// apart by a literal.)
func TestMySQLCtrlCInTheMariaDBCLICancelsOnlyItsQuery(t *testing.T) {
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Fatal("the mariadb client is missing (./scripts/test.sh installs mariadb-client)")
	}
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startMySQLServe(t)
	for _, target := range []struct{ name, addr string }{
		{"directly", mariaDB(t).Addr()},
		{"through slipstream", inst.mysqlAddr(t)},
	} {
		t.Run(target.name, func(t *testing.T) {
			watcher := openMySQL(t, newMySQLConfig(target.addr, mytest.AppDB))
			direct := openMySQL(t, directMySQLConfig(t))
			cli, other := "SELECT SLEEP(20), 'cli "+suffix()+"'", "SELECT SLEEP(4), 'other "+suffix()+"'"
			running := func(q string) (int, error) {
				var n int
				err := direct.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE info = ?", q).Scan(&n)
				return n, err
			}
			otherDone := make(chan error, 1)
			go func() {
				var v int
				var tag string
				otherDone <- watcher.QueryRowContext(ctx, other).Scan(&v, &tag)
			}()
			host, port, _ := strings.Cut(target.addr, ":")
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, "mariadb", "--protocol=tcp", "-h", host, "-P", port, "-u", mytest.AppUser,
				"-p"+mytest.AppPassword, "--skip-ssl", "-e", cli, mytest.AppDB)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{cli, other} {
				if err := eventually(ctx, func() error {
					if n, err := running(q); err != nil || n == 0 {
						return fmt.Errorf("%q is not running on MariaDB (%v)", q, err)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if err := eventually(ctx, func() error {
				if n, err := running(cli); err != nil || n != 0 {
					return fmt.Errorf("the CLI's sleep still runs (%v)", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			t.Logf("the CLI's SLEEP(20) ended %v after SIGINT", time.Since(start).Round(time.Millisecond))
			cmd.Wait()
			if n, err := running(other); err != nil || n != 1 {
				t.Errorf("the other client's sleep: %d running (%v), want it untouched", n, err)
			}
			if err := <-otherDone; err != nil && err != sql.ErrNoRows {
				t.Errorf("the other client's sleep: %v", err)
			}
			if !strings.Contains(out.String(), "1317") {
				t.Errorf("mariadb printed:\n%s\nwant ERROR 1317 (query execution was interrupted)", out.String())
			}
		})
	}
}

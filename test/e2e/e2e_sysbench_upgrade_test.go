package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// sysbenchSummary picks sysbench's totals out of its output.
var sysbenchSummary = regexp.MustCompile(`(?m)^\s+(transactions|ignored errors|reconnects):\s+(\d+)`)

// TestUpgradeUnderSysbench: sysbench oltp_read_write, persistent connections with server-side
// prepared statements, runs while serve is upgraded twice with the handover (SIGUSR2). Each
// MySQL session moves to the new process at a transaction boundary with its prepared
// statements (proxy/handover_mysql.go): sysbench sees no error and reconnects never. Only
// MariaDB's own deadlocks (1213) are ignored, as sysbench's default workload meets them
// directly too; any other error ends sysbench with an error, which fails the test.
//
// SLIPSTREAM_UPGRADE_SECONDS=30 makes it the measurement of deploy/README.md (16 threads,
// 30 s); the default is a short run.
func TestUpgradeUnderSysbench(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Skip("sysbench is not installed")
	}
	threads, seconds := upgradeLoad("10")
	ctx := testContext(t, 180*time.Second)
	my := mariaDB(t)
	rootCfg, err := mysql.ParseDSN(my.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	root := openMySQL(t, rootCfg)
	db := "sb_" + suffix()
	for _, q := range []string{"create database " + db, "grant all on " + db + ".* to '" + mytest.AppUser + "'@'%'"} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	host, port, _ := strings.Cut(my.Addr(), ":")
	common := []string{"oltp_read_write", "--tables=4", "--table-size=2000", "--db-driver=mysql", "--mysql-db=" + db,
		"--mysql-user=" + mytest.AppUser, "--mysql-password=" + mytest.AppPassword}
	if out, err := exec.CommandContext(ctx, "sysbench", append(common, "--mysql-host="+host, "--mysql-port="+port, "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}

	database := fmt.Sprintf("[[database]]\nname = %q\nkind = \"mysql\"\norigin = %q\n", db, my.URL(mytest.AppUser, mytest.AppPassword, db))
	cfg := lifecycleTOML(t, "", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", `shutdown_timeout = "30s"`, database)
	c := startChild(t, db, "serve", "--config", cfg, "--data-dir", t.TempDir())
	u, err := url.Parse(c.PGURL)
	if err != nil {
		t.Fatal(err)
	}
	// Progress: sysbench reports every second (--report-interval=1).
	out := newSyncBuffer()
	done := make(chan struct{})
	var sbErr error // set before done is closed
	reports := func() int { return strings.Count(out.String(), "] thds: ") }
	waitReports := func(more int) {
		t.Helper()
		from := reports()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { // sysbench ending early ends the wait
			select {
			case <-done:
				cancel()
			case <-wctx.Done():
			}
		}()
		if err := eventually(wctx, func() error {
			if n := reports() - from; n < more {
				return fmt.Errorf("%d progress reports from sysbench, waiting for %d", n, more)
			}
			return nil
		}); err != nil {
			select {
			case <-done:
				t.Fatalf("sysbench ended (%v) during the upgrades:\n%s", sbErr, out.String())
			default:
			}
			t.Fatalf("%v:\n%s", err, out.String())
		}
	}
	// 1213 (deadlock) is MariaDB's own answer to the workload, direct as well.
	sb := exec.CommandContext(ctx, "sysbench", append(common, "--mysql-host=127.0.0.1", "--mysql-port="+u.Port(),
		"--threads="+threads, "--time="+seconds, "--report-interval=1", "--mysql-ignore-errors=1213", "run")...)
	sb.Stdout, sb.Stderr = out, out
	go func() {
		defer close(done)
		sbErr = sb.Run()
	}()
	waitReports(2)
	c.handOver(t, ctx)
	waitReports(2)
	c.handOver(t, ctx)
	<-done
	sbOut := out.String()
	summary := "sysbench oltp_read_write --threads=" + threads + " --time=" + seconds + " through two handovers:"
	for _, m := range sysbenchSummary.FindAllStringSubmatch(sbOut, -1) {
		summary += " " + m[1] + " " + m[2] + ";"
	}
	summary += " sessions handed over: " + strings.Join(handedOver.FindAllString(c.stderr.String(), -1), ", ")
	t.Log(summary)
	if sbErr != nil {
		t.Fatalf("sysbench: %v\n%s\n%s", sbErr, sbOut, c.stderr.String())
	}
	if m := regexp.MustCompile(`reconnects:\s+(\d+)`).FindStringSubmatch(sbOut); m == nil || m[1] != "0" {
		t.Errorf("sysbench reconnected (its sessions were dropped):\n%s", sbOut)
	}
	if !strings.Contains(sbOut, "transactions:") {
		t.Errorf("no sysbench summary:\n%s", sbOut)
	}
	direct := openMySQL(t, newMySQLConfig(u.Host, db))
	var n int
	if err := direct.QueryRowContext(ctx, "select count(*) from sbtest1").Scan(&n); err != nil || n == 0 {
		t.Errorf("through the process left after both upgrades: %d rows (%v)", n, err)
	}
	c.stopLast(t, ctx)
}

// handedOver picks each old process's count of sessions handed over out of its log.
var handedOver = regexp.MustCompile(`sessions_handed_over=\d+`)

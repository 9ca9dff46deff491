package main

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

// sysbenchSummary picks sysbench's totals out of its output.
var sysbenchSummary = regexp.MustCompile(`(?m)^\s+(transactions|ignored errors|reconnects):\s+(\d+)`)

// TestUpgradeUnderSysbench measures MySQL clients through both upgrades: sysbench
// oltp_read_write, persistent connections, runs while serve is upgraded once with the handover
// (SIGUSR2) and once with SO_REUSEPORT (a new process on the same addresses, SIGTERM to the
// old one). MySQL sessions are not handed over: they drain in both, each ending at a
// transaction boundary with ER_SERVER_SHUTDOWN (1053), which sysbench, told to ignore it,
// should answer by reconnecting, to the new process; sysbench 1.0.20 crashes there instead
// (SIGSEGV in its reconnect), so its outcome is reported, not judged (see deploy/README.md).
// What is judged: each old process drains and exits, and the process left serves MySQL.
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
	// 1213 (deadlock) is MariaDB's own answer to the workload; 1053 is the drain's, after which
	// the connection closes (2013) and sysbench reconnects.
	sb := exec.CommandContext(ctx, "sysbench", append(common, "--mysql-host=127.0.0.1", "--mysql-port="+u.Port(),
		"--threads="+threads, "--time="+seconds, "--report-interval=1", "--mysql-ignore-errors=1213,1053,2013,2006", "run")...)
	sb.Stdout, sb.Stderr = out, out
	go func() {
		defer close(done)
		sbErr = sb.Run()
	}()
	waitReports(2)

	c.handOver(t, ctx)

	// SO_REUSEPORT: a new process on the same addresses, then SIGTERM to the one serving.
	http := c.HTTP
	cfgD := lifecycleTOML(t, "", "127.0.0.1:0", u.Host, http, `shutdown_timeout = "30s"`, database)
	d := startChild(t, db, "serve", "--config", cfgD, "--data-dir", t.TempDir())
	syscall.Kill(c.successors()[0], syscall.SIGTERM)
	if err := eventually(ctx, func() error {
		if n := strings.Count(c.stderr.String(), "slipstream stopping"); n < 2 {
			return fmt.Errorf("%d processes stopped, want 2", n)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, c.stderr.String())
	}
	<-done
	sbOut := []byte(out.String())
	direct := openMySQL(t, newMySQLConfig(u.Host, db))
	var n int
	if err := direct.QueryRowContext(ctx, "select count(*) from sbtest1").Scan(&n); err != nil || n == 0 {
		t.Errorf("through the process left after both upgrades: %d rows (%v)", n, err)
	}
	summary := "sysbench oltp_read_write --threads=" + threads + " --time=" + seconds + " through a handover and an SO_REUSEPORT upgrade:"
	for _, m := range sysbenchSummary.FindAllStringSubmatch(string(sbOut), -1) {
		summary += " " + m[1] + " " + m[2] + ";"
	}
	t.Log(summary)
	if sbErr != nil {
		t.Logf("sysbench: %v (its MySQL sessions drained with 1053: MySQL sessions are not handed over)", sbErr)
	}
	d.signal(t, syscall.SIGTERM)
	d.wait(t, 40*time.Second)
}

package e2e

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

// diffTarget is one deployment shape the scripts run through.
type diffTarget struct {
	name, addr string
	edge       *node // the edge of an edge+pool pair, whose log tells of its tunnel; nil for serve
}

// tunnelLostSince returns the line of the edge's log, after its first from bytes, that says
// its connection to the pool ended (the pool end closes an edge's connection that did not
// acknowledge an invalidation within its AckTimeout, 1 s, so that it cannot serve a stale
// read; on a machine loaded enough, an edge can be that late), or "".
func (d diffTarget) tunnelLostSince(from int) string {
	if d.edge == nil {
		return ""
	}
	for _, l := range strings.Split(d.edge.stderr.String()[from:], "\n") {
		if strings.Contains(l, "connection to the pool lost") {
			return l
		}
	}
	return ""
}

// logLen is how much the target's edge has logged so far.
func (d diffTarget) logLen() int {
	if d.edge == nil {
		return 0
	}
	return len(d.edge.stderr.String())
}

// runThrough runs script s through target d and returns the differences from want. A run
// during which the edge lost its tunnel to the pool (a load event: tunnelLostSince) is run
// once more, and said so in the log, so that a loaded machine does not fail a script whose
// answers are the database's; the differences of a run that fails otherwise come with what the
// edge logged meanwhile.
func runThrough(t *testing.T, ctx context.Context, d diffTarget, o mydiff.Options, s mydiff.Script, want *mydiff.Transcript) []string {
	t.Helper()
	for try := 0; ; try++ {
		mark := d.logLen()
		got, err := mydiff.Run(ctx, d.addr, o, s)
		var diffs []string
		if err != nil {
			diffs = append(diffs, err.Error())
		}
		if got != nil {
			diffs = append(diffs, mydiff.Compare(want, got)...)
		}
		if len(diffs) == 0 {
			return nil
		}
		if lost := d.tunnelLostSince(mark); lost != "" && try == 0 {
			t.Logf("through %s the edge lost its tunnel to the pool during the script; running it again:\n%s\n%s",
				d.name, lost, strings.Join(diffs, "\n"))
			continue
		}
		if d.edge != nil {
			diffs = append(diffs, "the edge logged meanwhile:\n"+d.edge.stderr.String()[mark:])
		}
		return diffs
	}
}

// mysqlDiffTargets starts serve and an edge+pool pair in front of the package's MariaDB, with
// max_allowed_packet at 64 MiB (as the 16 MiB scripts need), and returns their MySQL
// addresses by name.
func mysqlDiffTargets(t testing.TB, ctx context.Context) (direct string, targets []diffTarget) {
	t.Helper()
	my := mariaDB(t)
	root, err := sql.Open("mysql", my.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, "USE "+mytest.AppDB); err != nil {
		t.Fatal(err)
	}
	for _, q := range append([]string{"SET GLOBAL max_allowed_packet = 64 * 1024 * 1024"}, mydiff.FuzzSetup...) {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatalf("as root: %s: %v", q, err)
		}
	}
	serve := startMySQLServe(t)
	pool, certs, origin := startMySQLPool(t)
	edge := startNode(t, "edge", "--pool", "test="+pool.tunnelAddr(t), "--pg-listen", "127.0.0.1:0",
		"--mysql-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--certs", certs, "--data-dir", t.TempDir(),
		"--origin", origin)
	return my.Addr(), []diffTarget{{name: "serve", addr: serve.mysqlAddr(t)},
		{name: "edge+pool", addr: edge.mysqlConfigOf(t).Addr, edge: edge}}
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
			ok := t.Run(target.name+"/"+s.Name, func(t *testing.T) {
				if d := runThrough(t, ctx, target, o, s, want); len(d) > 0 {
					t.Errorf("through %s, answers differ from MariaDB's:\n%s", target.name, strings.Join(d, "\n"))
				}
			})
			if ok {
				passed[i]++
			}
		}
	}
	for i, target := range targets {
		t.Logf("%s: %d of %d scripts answer as MariaDB", target.name, passed[i], len(scripts))
	}
}

// FuzzMySQLAnswersAsMariaDB sends generated command sequences (mydiff.Generate: queries,
// prepared statements, cursors, long data, pipelined prepare-and-execute, COM_PING,
// COM_INIT_DB, COM_SET_OPTION, COM_RESET_CONNECTION, COM_FIELD_LIST, each script asking for its
// own capabilities) to MariaDB and through serve and edge+pool, and fails on any difference.
// The seeds (f.Add and testdata/fuzz) run in every go test; a long run:
//
//	SLIPSTREAM_FUZZ_TALLY=/tmp/my.tally go test ./test/e2e -timeout 0 -run '^$' \
//	    -fuzz FuzzMySQLAnswersAsMariaDB -fuzztime 1250x -parallel 1
//	awk '{n[$1] += $2} END {for (t in n) print t, n[t], "commands, no difference"}' /tmp/my.tally
//
// is 1,250 scripts of mydiff.GeneratedSteps (160) commands each: 200,000 commands per target,
// counted in the file SLIPSTREAM_FUZZ_TALLY names (fuzzTally).
func FuzzMySQLAnswersAsMariaDB(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\x1f\x04\x01\x00\x06\x01\x00\x00\x09\x01\x02",
		"\x03\x0d\x00\x02\x05\x01\x0e\x00\x03", "prepare and execute and fetch", "\x08\x05\x00\x02\x0c\x00\x00\x07\x00\x06"} {
		f.Add([]byte(seed))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	direct, targets := mysqlDiffTargets(f, ctx)
	o := mydiff.Options{User: mytest.AppUser, Password: mytest.AppPassword, DB: mytest.AppDB}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := mydiff.Generate(data)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		want, err := mydiff.Run(ctx, direct, o, s)
		if err != nil {
			t.Fatalf("against MariaDB: %v", err)
		}
		for _, target := range targets {
			if d := runThrough(t, ctx, target, o, s, want); len(d) > 0 {
				t.Errorf("through %s, answers differ from MariaDB's:\n%s\nscript:\n%s", target.name, strings.Join(d, "\n"), scriptText(s))
			} else {
				fuzzTally(t, target.name, len(s.Steps))
			}
		}
	})
}

// scriptText is a script as its lines, for a failure's report.
func scriptText(s mydiff.Script) string {
	var b strings.Builder
	for _, st := range s.Steps {
		b.WriteString(st.Text + "\n")
	}
	return b.String()
}

// TestMySQL65535ParametersThroughGoSQLDriver: go-sql-driver/mysql prepares and executes a
// statement with 65,535 parameters, the protocol's most, through serve as directly; one more
// is refused as MariaDB refuses it.
func TestMySQL65535ParametersThroughGoSQLDriver(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	inst := startMySQLServe(t)
	q := func(n int) (string, []any) {
		args := make([]any, n)
		for i := range args {
			args[i] = int64(i)
		}
		return "SELECT COALESCE(NULL" + strings.Repeat(", ?", n) + ")", args
	}
	for _, target := range []struct{ name, addr string }{
		{"directly", mariaDB(t).Addr()},
		{"through slipstream", inst.mysqlAddr(t)},
	} {
		db := openMySQL(t, newMySQLConfig(target.addr, mytest.AppDB))
		query, args := q(65535)
		var v int64
		if err := db.QueryRowContext(ctx, query, args...).Scan(&v); err != nil || v != 0 {
			t.Errorf("%s: 65,535 parameters: %v, %d", target.name, err, v)
		}
		query, args = q(65536)
		err := db.QueryRowContext(ctx, query, args...).Scan(&v)
		if mysqlErrno(err) != 1390 {
			t.Errorf("%s: 65,536 parameters: %v, want error 1390", target.name, err)
		}
	}
}

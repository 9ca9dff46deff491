package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// chromium returns Debian's chromium binary, or skips the test (scripts/test.sh installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (./scripts/test.sh installs it)")
	return ""
}

// headless runs chromium on url with args and returns its stdout and stderr.
func headless(t *testing.T, ctx context.Context, bin, url string, args ...string) (stdout, stderr string) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(), "--window-size=1440,1180", "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(cctx, bin, append(append(base, args...), url)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	return out.String(), errOut.String()
}

var consoleLine = regexp.MustCompile(`(?m)^.*:CONSOLE\(\d+\)\].*$`)

// TestTheDashboardRendersAndMovesUnderLoad loads the dashboard in headless Chromium while
// clients run queries: the page renders the live figures, they move between two loads, and
// the page logs nothing to its console. SLIPSTREAM_DASHBOARD_PNG=path also saves a screenshot
// (docs/dashboard.png is made so).
func TestTheDashboardRendersAndMovesUnderLoad(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	// Three Chromium starts: each takes a while on a loaded machine.
	ctx := testContext(t, 300*time.Second)
	inst := startAdminServe(t, "")
	table := "dash_" + suffix()
	direct := connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, "create table "+table+" (id int primary key, name text, score int); "+
		"insert into "+table+" select g, 'user ' || g, g % 97 from generate_series(1, 500) g; "+
		"create table "+table+"_visits (id int, at timestamptz)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Exec(context.Background(), "drop table if exists "+table+", "+table+"_visits") })

	// Load: cacheable point reads and a report query (hits once warm), volatile reads, and
	// transactions writing another table (so that they do not invalidate the reads).
	lctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	queries := []string{
		"select name, score from " + table + " where id = $1",
		"select count(*), avg(score) from " + table + " where score > $1",
		"select now(), name from " + table + " where id = $1",
	}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(lctx, inst.plainURL())
			if err != nil {
				return
			}
			defer c.Close(context.Background())
			for n := 0; lctx.Err() == nil; n++ {
				q := queries[(n+i)%len(queries)]
				if n%10 == 9 {
					tx, err := c.Begin(lctx)
					if err == nil {
						tx.Exec(lctx, "insert into "+table+"_visits values ($1, now())", n%500+1)
						tx.Commit(lctx)
					}
					continue
				}
				rows, err := c.Query(lctx, q, n%50+1)
				if err == nil {
					for rows.Next() {
					}
					rows.Close()
				}
				if err != nil && !errors.Is(err, context.Canceled) && lctx.Err() == nil {
					t.Errorf("load: %v", err)
					return
				}
			}
		}()
	}
	url := "http://" + inst.HTTP + "/"
	figure := regexp.MustCompile(`id="(qps|p50|p99|hit|clients)">([^<]*)<`)
	read := func() (map[string]string, string) {
		dom, logs := headless(t, ctx, bin, url, "--virtual-time-budget=3000", "--dump-dom")
		got := map[string]string{}
		for _, m := range figure.FindAllStringSubmatch(dom, -1) {
			got[m[1]] = m[2]
		}
		if !strings.Contains(dom, table) {
			t.Errorf("the top shapes do not show the load's queries (of %s)", table)
		}
		return got, logs
	}
	// Wait until a whole second of load is in the series.
	if err := eventually(ctx, func() error {
		body, _ := httpGet(t, "http://"+inst.HTTP+"/api/overview")
		if !strings.Contains(body, `"units_per_s":0,`) && strings.Contains(body, table) {
			return nil
		}
		return errors.New("no load in the overview yet")
	}); err != nil {
		t.Fatal(err)
	}
	first, logs := read()
	for _, l := range consoleLine.FindAllString(logs, -1) {
		t.Errorf("the page logged to its console: %s", l)
	}
	for _, k := range []string{"qps", "p50", "p99", "clients"} {
		v, err := strconv.ParseFloat(strings.ReplaceAll(first[k], ",", ""), 64)
		if err != nil || v <= 0 {
			t.Errorf("%s shows %q, want a number above 0 under load (all: %v)", k, first[k], first)
		}
	}
	second, _ := read()
	if first["qps"] == second["qps"] && first["p50"] == second["p50"] && first["p99"] == second["p99"] {
		t.Errorf("the figures did not move between two loads under load: %v then %v", first, second)
	}
	t.Logf("dashboard under load: %v then %v", first, second)
	shot := os.Getenv("SLIPSTREAM_DASHBOARD_PNG")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "dashboard.png")
	}
	headless(t, ctx, bin, url, "--virtual-time-budget=3000", "--screenshot="+shot)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
}

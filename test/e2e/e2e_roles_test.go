package e2e

// any_role (issue 21): roles created at the origin, none named in Slipstream's configuration,
// log in through Slipstream with their own passwords, through serve and through edge + pool.
// The configuration and the logs never hold a password of theirs.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// testRole is a role the test creates at the origin.
type testRole struct {
	name, password string
	clientKey      string // hex: what the edge recovers from the role's SCRAM proof
}

// roleFixture is three roles with their own rows in a row-level-security table, and a
// SECURITY DEFINER lookup function that the app user (the origin URL's, no superuser) may run:
// docs/roles.md's recipe.
type roleFixture struct {
	roles  []testRole
	table  string
	lookup string // the auth_query
}

// makeRoles creates the fixture; it is dropped when the test ends, after every Slipstream of
// the test has stopped (cleanups run last-registered first).
func makeRoles(t *testing.T, ctx context.Context) *roleFixture {
	t.Helper()
	sfx := suffix()
	admin := connect(t, ctx, srv.URL(pgtest.AdminUser, pgtest.AdminPassword, pgtest.AppDB))
	f := &roleFixture{table: "rls_docs_" + sfx}
	fn := "slipstream_lookup_" + sfx
	f.lookup = "SELECT usename, passwd FROM public." + fn + "($1)"
	for _, who := range []string{"reader", "writer", "tenant"} {
		f.roles = append(f.roles, testRole{name: who + "_" + sfx, password: "pw-" + who + "-" + suffix() + suffix()})
	}
	stmts := []string{
		"CREATE TABLE " + f.table + " (id int PRIMARY KEY, owner name NOT NULL, body text)",
		"ALTER TABLE " + f.table + " ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY own_rows ON " + f.table + " USING (owner = current_user)",
		// docs/roles.md: the lookup function, owned by a superuser, run by the lookup role.
		"CREATE FUNCTION public." + fn + "(p_usename text) RETURNS TABLE (usename name, passwd text) " +
			"LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS " +
			"$$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = p_usename $$",
		"REVOKE ALL ON FUNCTION public." + fn + "(text) FROM PUBLIC",
		"GRANT EXECUTE ON FUNCTION public." + fn + "(text) TO " + pgtest.AppUser,
	}
	for i, r := range f.roles {
		stmts = append(stmts,
			fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", r.name, r.password),
			fmt.Sprintf("GRANT SELECT, INSERT, UPDATE ON %s TO %s", f.table, r.name),
			fmt.Sprintf("INSERT INTO %s VALUES (%d, '%s', 'row of %s'), (%d, '%s', 'another row of %s')",
				f.table, 10*i+1, r.name, r.name, 10*i+2, r.name, r.name))
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, srv.URL(pgtest.AdminUser, pgtest.AdminPassword, pgtest.AppDB))
		if err != nil {
			t.Errorf("drop the roles: %v", err)
			return
		}
		defer conn.Close(cctx)
		drops := []string{"DROP TABLE IF EXISTS " + f.table, "DROP FUNCTION IF EXISTS public." + fn + "(text)"}
		for _, r := range f.roles {
			drops = append(drops, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '"+r.name+"'",
				"DROP ROLE IF EXISTS "+r.name)
		}
		for _, s := range drops {
			if _, err := conn.Exec(cctx, s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	for _, s := range stmts {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for i, r := range f.roles {
		var verifier string
		if err := admin.QueryRow(ctx, "SELECT passwd FROM pg_shadow WHERE usename = $1", r.name).Scan(&verifier); err != nil {
			t.Fatal(err)
		}
		key, err := pgtest.SCRAMClientKey(verifier, r.password)
		if err != nil {
			t.Fatal(err)
		}
		f.roles[i].clientKey = hex.EncodeToString(key)
	}
	return f
}

// toml is the [[database]] table of app with any_role, the origin URL being app's (no
// superuser), and extra lines.
func (f *roleFixture) toml(extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[database]]\nname = %q\norigin = %q\nany_role = true\nauth_query = %q\n",
		pgtest.AppDB, directURL(), f.lookup)
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// roleURL is base (a Slipstream URL of app, without TLS) with role's user and password.
func roleURL(t testing.TB, base string, user, password string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// checkNoSecrets fails the test when any role's password, or a SCRAM verifier, is in text.
func (f *roleFixture) checkNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, r := range f.roles {
		if strings.Contains(text, r.password) {
			t.Errorf("%s holds the password of role %s", what, r.name)
		}
		if strings.Contains(strings.ToLower(text), r.clientKey) {
			t.Errorf("%s holds the ClientKey of role %s", what, r.name)
		}
	}
	if strings.Contains(text, "SCRAM-SHA-256$") || strings.Contains(text, pgtest.MD5Password) {
		t.Errorf("%s holds a verifier or the md5 role's password", what)
	}
}

// checkRoles logs each role in through url (a Slipstream URL of app): it is current_user,
// reads its own rows of the RLS table three times (a miss, then two cached reads), and a wrong
// password or an unknown role gets PostgreSQL's own refusal.
func (f *roleFixture) checkRoles(t *testing.T, ctx context.Context, base string) {
	for _, r := range f.roles {
		conn := connect(t, ctx, roleURL(t, base, r.name, r.password))
		var who string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != r.name {
			t.Errorf("role %s: current_user = %q (%v)", r.name, who, err)
		}
		want := fmt.Sprintf("row of %s|another row of %s", r.name, r.name)
		for i := range 3 { // the same text for every role: a cached answer must be the role's own
			rows, err := conn.Query(ctx, "SELECT body FROM "+f.table+" ORDER BY id")
			if err != nil {
				t.Fatalf("role %s: read %d: %v", r.name, i, err)
			}
			bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if got := strings.Join(bodies, "|"); err != nil || got != want {
				t.Errorf("role %s: read %d got %q (%v), want its own rows %q", r.name, i, got, err, want)
			}
		}
	}

	// The md5 role (pg_hba md5 for it): the pool logs in with its md5 verifier.
	conn := connect(t, ctx, roleURL(t, base, pgtest.MD5User, pgtest.MD5Password))
	var who string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != pgtest.MD5User {
		t.Errorf("md5 role: current_user = %q (%v)", who, err)
	}

	for _, c := range []struct{ name, user, password string }{
		{"a wrong password", f.roles[0].name, "not-" + f.roles[0].password},
		{"an unknown role", "nobody_" + suffix(), "whatever"},
	} {
		_, direct := pgconn.Connect(ctx, roleURL(t, directURL(), c.user, c.password))
		_, through := pgconn.Connect(ctx, roleURL(t, base, c.user, c.password))
		var dpe, tpe *pgconn.PgError
		if !errors.As(direct, &dpe) || !errors.As(through, &tpe) {
			t.Errorf("%s: direct %v, through Slipstream %v: want a PostgreSQL error from both", c.name, direct, through)
			continue
		}
		if tpe.Code != "28P01" || tpe.Code != dpe.Code || tpe.Message != dpe.Message || tpe.Severity != dpe.Severity {
			t.Errorf("%s: through Slipstream %s %s %q, directly %s %s %q", c.name, tpe.Severity, tpe.Code, tpe.Message, dpe.Severity, dpe.Code, dpe.Message)
		}
	}
}

func TestAnyRoleLogsEveryRoleInAsItselfThroughServe(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	f := makeRoles(t, ctx)
	path := writeTOML(t, f.toml())
	inst := runServe(t, []string{"--config", path})
	f.checkRoles(t, ctx, inst.plainURL())

	// Reads answered from the cache (one in three roles' repeated reads at least), each the
	// role's own rows (checkRoles), though every role sent the same text.
	metrics := inst.metrics(t)
	if hits, _ := metricValue(metrics, "slipstream_cache_queries_total", `status="hit"`); hits < 3 {
		t.Errorf("cache hits: %v, want at least 3", hits)
	}
	if refused, _ := metricValue(metrics, "slipstream_auth_failures_total"); refused < 2 {
		t.Errorf("slipstream_auth_failures_total = %v, want 2 (a wrong password, an unknown role)", refused)
	}
	config, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.checkNoSecrets(t, "the configuration", string(config))
	inst.Stop()
	f.checkNoSecrets(t, "serve's log", inst.stderr.String()+inst.stdout.String())
}

func TestAnyRoleLogsEveryRoleInAsItselfThroughEdgeAndPool(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	f := makeRoles(t, ctx)
	edge, pool, configs := startEdgeAndPool(t, f.toml())
	f.checkRoles(t, ctx, edge.appURL(t))

	for name, text := range configs {
		f.checkNoSecrets(t, "the configuration "+name, text)
	}
	edge.stop()
	pool.stop()
	f.checkNoSecrets(t, "the edge's log", edge.stderr.String()+edge.out.String())
	f.checkNoSecrets(t, "the pool's log", pool.stderr.String()+pool.out.String())
}

// peakConnections runs sample every 5 ms until done is closed, and returns the most
// connections it counted of each user, and how many samples it took. sample calls count with
// each user's connections at that moment.
func peakConnections(t *testing.T, ctx context.Context, done <-chan struct{}, sample func(count func(who string, n int)) error) (map[string]int, int) {
	t.Helper()
	peak, samples := map[string]int{}, 0
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := sample(func(who string, n int) { peak[who] = max(peak[who], n) }); err != nil {
			t.Fatal(err)
		}
		samples++
		select {
		case <-done:
			return peak, samples
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the load did not finish")
		}
	}
}

// startEdgeAndPool runs a pool with the [[database]] tables db, and an edge (PostgreSQL and
// MySQL listeners) with the same tables and a [[pool]] table for it; configs are the two files'
// texts by name, for a search for secrets.
func startEdgeAndPool(t *testing.T, db string) (edge, pool *node, configs map[string]string) {
	t.Helper()
	certs := makeCerts(t)
	pool = startNode(t, "pool", "--config", writeTOML(t, db), "--tunnel-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--certs", certs, "--data-dir", t.TempDir(), "--region", "test")
	edgeCfg := filepath.Join(t.TempDir(), "edge.toml")
	edgeTOML := fmt.Sprintf("certs_dir = %q\n[[pool]]\nname = \"test\"\naddress = %q\n", certs, pool.tunnelAddr(t)) + db
	if err := os.WriteFile(edgeCfg, []byte(edgeTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	edge = startNode(t, "edge", "--config", edgeCfg, "--pg-listen", "127.0.0.1:0", "--mysql-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	return edge, pool, map[string]string{"pool.toml": db, "edge.toml": edgeTOML}
}

// TestPgbenchAsTwoRolesStaysWithinEachRolesLimit runs pgbench as two roles at once through
// serve, max_connections = 2 per role, and counts each role's origin connections in
// pg_stat_activity all along: never over 2, while both run.
func TestPgbenchAsTwoRolesStaysWithinEachRolesLimit(t *testing.T) {
	t.Parallel()
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench: %v (./scripts/test.sh installs postgresql-15)", err)
	}
	ctx := testContext(t, 120*time.Second)
	f := makeRoles(t, ctx)
	inst := runServe(t, []string{"--config", writeTOML(t, f.toml("max_connections = 2", "max_db_connections = 4", `queue_timeout = "20s"`))})
	u, err := url.Parse(inst.PGURL)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "roles.sql")
	// A transaction holds its origin connection: four clients of a role share its two.
	body := "BEGIN;\nSELECT count(*) FROM " + f.table + ";\nUPDATE " + f.table + " SET body = body WHERE owner = current_user;\nSELECT pg_sleep(0.002);\nEND;\n"
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	admin := connect(t, ctx, srv.URL(pgtest.AdminUser, pgtest.AdminPassword, pgtest.AppDB))
	bench := f.roles[:2]
	var wg sync.WaitGroup
	outs := make([]string, len(bench))
	errs := make([]error, len(bench))
	done := make(chan struct{})
	for i, r := range bench {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, pgbench, "-n", "-f", script, "-c", "4", "-j", "4", "-t", "100",
				"-h", u.Hostname(), "-p", u.Port(), "-U", r.name, pgtest.AppDB)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+r.password, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10", "PGAPPNAME=")
			out, err := cmd.CombinedOutput()
			outs[i], errs[i] = string(out), err
		}()
	}
	go func() { wg.Wait(); close(done) }()

	peak, samples := peakConnections(t, ctx, done, func(count func(who string, n int)) error {
		rows, err := admin.Query(ctx, "SELECT usename::text, count(*)::int FROM pg_stat_activity WHERE usename = ANY($1) GROUP BY 1",
			[]string{bench[0].name, bench[1].name})
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var who string
			var n int
			if err := rows.Scan(&who, &n); err != nil {
				return err
			}
			count(who, n)
		}
		return rows.Err()
	})
	for i, r := range bench {
		if errs[i] != nil || !strings.Contains(outs[i], "number of transactions actually processed: 400/400") {
			t.Errorf("pgbench as %s: %v\n%s", r.name, errs[i], outs[i])
		}
		if peak[r.name] > 2 || peak[r.name] == 0 {
			t.Errorf("role %s: at most %d origin connections in pg_stat_activity, want 1 or 2 (its max_connections)", r.name, peak[r.name])
		}
		if m := pgbenchTPS.FindStringSubmatch(outs[i]); m != nil {
			t.Logf("role %s: %s, peak origin connections %d (%d samples of pg_stat_activity)", r.name, m[0], peak[r.name], samples)
		}
	}
}

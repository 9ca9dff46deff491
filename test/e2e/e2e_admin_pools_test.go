package e2e

// Every pool in the console (issue 20): the pools a reload opens, those the REST APIs create,
// and each any_role role's pool are in SHOW POOLS (one row per database and user, as
// PgBouncer's), SHOW DATABASES, SHOW STATS, /api/overview and /metrics, and a reload, a REST
// create and the console running at once share the pools' list without a race.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	cfd1 "github.com/cloudflare/cloudflare-go/v6/d1"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// poolKeys are SHOW POOLS' rows as "database/user".
func poolKeys(rows []map[string]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["database"]+"/"+r["user"])
	}
	return out
}

// countOf counts the rows whose column key is value.
func countOf(rows []map[string]string, key, value string) int {
	n := 0
	for _, r := range rows {
		if r[key] == value {
			n++
		}
	}
	return n
}

// overviewPools are /api/overview's pools.
func overviewPools(t *testing.T, inst *instance) []struct{ Name, User string } {
	t.Helper()
	body, code := httpGet(t, "http://"+inst.HTTP+"/api/overview")
	var o struct {
		Pools []struct{ Name, User string } `json:"pools"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &o) != nil {
		t.Fatalf("/api/overview: %d %s", code, body)
	}
	return o.Pools
}

// reloadWith writes toml to path and runs RELOAD on the console c.
func reloadWith(t *testing.T, ctx context.Context, c *pgx.Conn, path, toml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "RELOAD"); err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
}

// TestTheConsoleListsEveryPool: serve in front of PostgreSQL with an any_role database and a
// D1 database; two roles log in, the REST API creates a D1 database, a RELOAD adds a
// PostgreSQL database and then replaces its pool. Each pool is listed where an operator looks:
// SHOW POOLS (a row per role), SHOW DATABASES and SHOW STATS (a row per database), the
// dashboard's /api/overview and /metrics; SET default_pool_size resizes them; a deleted or
// removed database leaves them.
func TestTheConsoleListsEveryPool(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	f := makeRoles(t, ctx)
	head := adminTOML() + "api_token = \"pools-token\"\n" + f.toml() + "[[database]]\nname = \"main\"\nkind = \"d1\"\nauth_method = \"trust\"\n"
	path := writeTOML(t, head)
	inst := runServe(t, []string{"--config", path})
	console := simpleConn(t, ctx, consoleURL(t, inst, "ops", "pgbouncer"))

	// Two roles log in and stay.
	for _, r := range f.roles[:2] {
		conn := connect(t, ctx, roleURL(t, inst.plainURL(), r.name, r.password))
		if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatalf("role %s: %v", r.name, err)
		}
	}
	pools := showRows(t, ctx, console, "SHOW POOLS")
	for _, r := range f.roles[:2] {
		row := rowOf(pools, "user", r.name)
		if row == nil || row["database"] != pgtest.AppDB || row["cl_active"] != "1" || num(row["sv_idle"])+num(row["sv_active"]) < 1 {
			t.Errorf("SHOW POOLS, role %s: %v; want its own row of %s with its client and its connection (rows %v)",
				r.name, row, pgtest.AppDB, poolKeys(pools))
		}
	}
	if row := rowOf(pools, "user", pgtest.AppUser); row == nil || row["database"] != pgtest.AppDB {
		t.Errorf("SHOW POOLS: no row of %s's own pool (the origin URL's user %s): %v", pgtest.AppDB, pgtest.AppUser, poolKeys(pools))
	}
	if rowOf(pools, "user", f.roles[2].name) != nil {
		t.Errorf("SHOW POOLS lists role %s, which never logged in", f.roles[2].name)
	}
	if dbs := showRows(t, ctx, console, "SHOW DATABASES"); countOf(dbs, "name", pgtest.AppDB) != 1 ||
		num(rowOf(dbs, "name", pgtest.AppDB)["current_connections"]) < 2 {
		t.Errorf("SHOW DATABASES: %v; want one row of %s counting its roles' connections", dbs, pgtest.AppDB)
	}

	// A D1 database the REST API creates.
	client := cloudflare.NewClient(option.WithBaseURL("http://"+inst.HTTP), option.WithAPIToken("pools-token"), option.WithMaxRetries(0))
	acc := cloudflare.F("local")
	made := "made_" + suffix()
	fresh, err := client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F(made)})
	if err != nil {
		t.Fatal(err)
	}
	// A database a reload adds.
	added := "added_" + suffix()
	addedTOML := head + appDatabase(added)
	reloadWith(t, ctx, console, path, addedTOML)

	pools = showRows(t, ctx, console, "SHOW POOLS")
	for _, name := range []string{made, made + "#mysql", added} {
		if rowOf(pools, "database", name) == nil {
			t.Errorf("SHOW POOLS: no row of %s: %v", name, poolKeys(pools))
		}
	}
	for _, cmd := range []string{"SHOW DATABASES", "SHOW STATS"} {
		key := map[string]string{"SHOW DATABASES": "name", "SHOW STATS": "database"}[cmd]
		rows := showRows(t, ctx, console, cmd)
		for _, name := range []string{made, added, pgtest.AppDB} {
			if countOf(rows, key, name) != 1 {
				t.Errorf("%s: %d rows of %s, want 1: %v", cmd, countOf(rows, key, name), name, rows)
			}
		}
	}
	// SET default_pool_size reaches them all.
	if _, err := console.Exec(ctx, "SET default_pool_size = 3"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{made, made + "#mysql", added, pgtest.AppDB} {
		if row := rowOf(showRows(t, ctx, console, "SHOW DATABASES"), "name", name); row["pool_size"] != "3" {
			t.Errorf("SHOW DATABASES after SET default_pool_size = 3: %v", row)
		}
	}
	seen := map[string]bool{}
	for _, p := range overviewPools(t, inst) {
		seen[p.Name+"/"+p.User] = true
	}
	for _, k := range []string{made + "/slipstream", added + "/" + pgtest.AppUser, pgtest.AppDB + "/" + f.roles[0].name} {
		if !seen[k] {
			t.Errorf("/api/overview: no pool %s: %v", k, seen)
		}
	}

	// A reload that changes the added database's origin settings opens it a new pool, which
	// replaces the old one in the lists; /metrics still answers (one series per database).
	reloadWith(t, ctx, console, path, head+appDatabase(added, "idle_timeout = \"7s\""))
	if n := countOf(showRows(t, ctx, console, "SHOW POOLS"), "database", added); n != 1 {
		t.Errorf("SHOW POOLS after %s's pool was replaced: %d rows of it, want 1", added, n)
	}
	metrics := inst.metrics(t)
	for _, labels := range [][]string{{`db="` + added + `"`, `user="` + pgtest.AppUser + `"`},
		{`db="` + made + `"`}, {`db="` + pgtest.AppDB + `"`, `user="` + f.roles[1].name + `"`, `state="active"`}} {
		if v, ok := metricValue(metrics, "slipstream_pool_clients", labels...); !ok || v < 0 {
			t.Errorf("/metrics: no slipstream_pool_clients{%s}", strings.Join(labels, ","))
		}
	}
	if v, _ := metricValue(metrics, "slipstream_pool_connections", `db="`+pgtest.AppDB+`"`, `user="`+f.roles[0].name+`"`); v < 1 {
		t.Errorf("/metrics: slipstream_pool_connections of role %s = %v, want its connection", f.roles[0].name, v)
	}

	// Deleted through the API, removed by a reload: gone from the console.
	if _, err := client.D1.Database.Delete(ctx, fresh.UUID, cfd1.DatabaseDeleteParams{AccountID: acc}); err != nil {
		t.Fatal(err)
	}
	reloadWith(t, ctx, console, path, head)
	pools = showRows(t, ctx, console, "SHOW POOLS")
	for _, name := range []string{made, made + "#mysql", added} {
		if rowOf(pools, "database", name) != nil {
			t.Errorf("SHOW POOLS still lists %s: %v", name, poolKeys(pools))
		}
	}
	if rowOf(pools, "database", "main") == nil || rowOf(pools, "user", f.roles[0].name) == nil {
		t.Errorf("SHOW POOLS after the reload lost a configured pool: %v", poolKeys(pools))
	}
}

// TestReloadRESTCreateAndShowPoolsRunAtOnce: RELOADs that add and remove a database, REST
// creates and deletes, and the console's and the dashboard's readers run at once (the race
// detector watches the pools' list); at the end the console lists exactly what is served.
func TestReloadRESTCreateAndShowPoolsRunAtOnce(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	head := adminTOML() + "api_token = \"race-token\"\n[[database]]\nname = \"main\"\nkind = \"d1\"\nauth_method = \"trust\"\n"
	path := writeTOML(t, head)
	inst := runServeFor(t, "main", []string{"--config", path})
	reloader := simpleConn(t, ctx, consoleURL(t, inst, "ops", "slipstream"))
	reader := simpleConn(t, ctx, consoleURL(t, inst, "stats", "slipstream"))
	client := cloudflare.NewClient(option.WithBaseURL("http://"+inst.HTTP), option.WithAPIToken("race-token"), option.WithMaxRetries(0))
	acc := cloudflare.F("local")

	const rounds = 6
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	wg.Add(2)
	go func() { // reloads: "extra" comes and goes
		defer wg.Done()
		for i := range rounds {
			toml := head
			if i%2 == 0 {
				toml += "[[database]]\nname = \"extra\"\nkind = \"d1\"\nauth_method = \"trust\"\n"
			}
			if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
				errs <- err
				return
			}
			if _, err := reloader.Exec(ctx, "RELOAD"); err != nil {
				errs <- fmt.Errorf("RELOAD %d: %w", i, err)
			}
		}
	}()
	var kept []string
	go func() { // the REST API: rest0..rest5 created, the odd ones deleted
		defer wg.Done()
		for i := range rounds {
			name := fmt.Sprintf("rest%d", i)
			db, err := client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F(name)})
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", name, err)
				continue
			}
			if i%2 == 1 {
				if _, err := client.D1.Database.Delete(ctx, db.UUID, cfd1.DatabaseDeleteParams{AccountID: acc}); err != nil {
					errs <- fmt.Errorf("delete %s: %w", name, err)
				}
				continue
			}
			kept = append(kept, name)
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		for _, q := range []string{"SHOW POOLS", "SHOW DATABASES", "SHOW STATS", "SHOW SERVERS"} {
			if _, err := reader.Exec(ctx, q); err != nil {
				t.Fatalf("%s while reloading and creating: %v", q, err)
			}
		}
		for _, page := range []string{"/api/overview", "/metrics"} {
			if body, code := httpGet(t, "http://"+inst.HTTP+page); code != 200 {
				t.Fatalf("GET %s while reloading and creating: %d %s", page, code, body)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d rounds of the console's readers ran beside %d reloads and %d REST creates", reads, rounds, rounds)

	// The last reload had no "extra" (rounds is even); the kept REST databases are served.
	want := map[string]bool{"main": true, "main#mysql": true}
	for _, name := range kept {
		want[name], want[name+"#mysql"] = true, true
	}
	got := map[string]bool{}
	for _, r := range showRows(t, ctx, reader, "SHOW POOLS") {
		if got[r["database"]] {
			t.Errorf("SHOW POOLS lists %s twice", r["database"])
		}
		got[r["database"]] = true
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SHOW POOLS lists %v, want %v", got, want)
	}
}

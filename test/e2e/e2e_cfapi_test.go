package e2e

import (
	"context"
	"database/sql"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	cfd1 "github.com/cloudflare/cloudflare-go/v6/d1"
	cfkv "github.com/cloudflare/cloudflare-go/v6/kv"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/jackc/pgx/v5"
)

// TestDatabasesTheSDKCreatesAreServedAtOnceOverBothProtocols drives `slipstream serve`'s REST
// APIs with Cloudflare's official Go SDK: a D1 database and a KV namespace it creates are
// reached over PostgreSQL and MySQL at once, what the SDK writes SQL reads (psql too) and the
// other way round, a renamed namespace moves to its new name, a deleted database is gone, and
// what was created is served again after a restart.
func TestDatabasesTheSDKCreatesAreServedAtOnceOverBothProtocols(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "slipstream.toml")
	toml := "api_token = \"sdk-token\"\n[[database]]\nname = \"main\"\nkind = \"d1\"\nauth_method = \"trust\"\n" +
		"[[database]]\nname = \"cfg\"\nkind = \"kv\"\nauth_method = \"trust\"\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfg, "--data-dir", dir}
	inst := runServeFor(t, "main", args)
	client := cloudflare.NewClient(option.WithBaseURL("http://"+inst.HTTP), option.WithAPIToken("sdk-token"), option.WithMaxRetries(0))
	acc := cloudflare.F("local")
	pgURL := func(in *instance, db string) string { return strings.Replace(in.plainURL(), "/main?", "/"+db+"?", 1) }
	var myMain string
	for _, m := range mysqlLine.FindAllStringSubmatch(inst.stdout.String(), -1) {
		if m[1] == "main" {
			myMain = m[2]
		}
	}

	// D1: created by the SDK, written over PostgreSQL, read by the SDK and over MySQL.
	fresh, err := client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("fresh")})
	if err != nil {
		t.Fatal(err)
	}
	pg := connect(t, ctx, pgURL(inst, "fresh"))
	if _, err := pg.Exec(ctx, "create table notes (id integer primary key, body text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Exec(ctx, "insert into notes (body) values ($1)", "over postgres"); err != nil {
		t.Fatal(err)
	}
	res, err := client.D1.Database.Query(ctx, fresh.UUID, cfd1.DatabaseQueryParams{AccountID: acc,
		Body: cfd1.DatabaseQueryParamsBodyD1SingleQuery{Sql: cloudflare.F("insert into notes (body) values (?); select body from notes order by id"),
			Params: cloudflare.F([]string{"over the SDK"})}})
	if err != nil || len(res.Result) != 2 || len(res.Result[1].Results) != 2 {
		t.Fatalf("SDK query: %+v, %v", res, err)
	}
	my, err := sql.Open("mysql", mysqlDSN(t, strings.Replace(myMain, "/main", "/fresh", 1), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer my.Close()
	var body string
	if err := my.QueryRowContext(ctx, "SELECT body FROM notes WHERE id = 2").Scan(&body); err != nil || body != "over the SDK" {
		t.Errorf("over MySQL, a row the SDK wrote: %q, %v\n%s", body, err, inst.stderr.String())
	}

	// KV: created by the SDK; a value with metadata it writes is read over SQL and by psql.
	ns, err := client.KV.Namespaces.New(ctx, cfkv.NamespaceNewParams{AccountID: acc, Title: cloudflare.F("sessions")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.KV.Namespaces.Values.Update(ctx, ns.ID, "user:1", cfkv.NamespaceValueUpdateParams{AccountID: acc,
		Value:    cloudflare.F[cfkv.NamespaceValueUpdateParamsValueUnion](shared.UnionString("hello")),
		Metadata: cloudflare.F[any](`{"plan":"pro"}`)}); err != nil {
		t.Fatal(err)
	}
	kvc := connect(t, ctx, pgURL(inst, "sessions"))
	var value []byte
	var meta string
	if err := kvc.QueryRow(ctx, "select value, metadata from kv where key = $1", "user:1").Scan(&value, &meta); err != nil || string(value) != "hello" || meta != `{"plan":"pro"}` {
		t.Errorf("over SQL, a value the SDK wrote: %q %s, %v", value, meta, err)
	}
	if psql, err := exec.LookPath("psql"); err == nil {
		out, err := exec.CommandContext(ctx, psql, pgURL(inst, "sessions"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
			"-c", "select value from kv where key = 'user:1'").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != `\x68656c6c6f` {
			t.Errorf("psql, a value the SDK wrote: %q, %v", out, err)
		}
	}
	if _, err := kvc.Exec(ctx, "insert into kv (key, value) values ('from:sql', 'written by pgx')"); err != nil {
		t.Fatal(err)
	}
	got, err := client.KV.Namespaces.Values.Get(ctx, ns.ID, "from:sql", cfkv.NamespaceValueGetParams{AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "written by pgx" {
		t.Errorf("the SDK, a value pgx wrote: %q", b)
	}

	// Rename: SQL clients follow the title.
	if _, err := client.KV.Namespaces.Update(ctx, ns.ID, cfkv.NamespaceUpdateParams{AccountID: acc, Title: cloudflare.F("sessions-v2")}); err != nil {
		t.Fatal(err)
	}
	renamed := connect(t, ctx, pgURL(inst, "sessions-v2"))
	if err := renamed.QueryRow(ctx, "select value from kv where key = 'user:1'").Scan(&value); err != nil || string(value) != "hello" {
		t.Errorf("under the new title: %q, %v", value, err)
	}
	if _, err := connectErr(ctx, pgURL(inst, "sessions")); sqlstate(err) != "3D000" {
		t.Errorf("the old title: %v, want SQLSTATE 3D000", err)
	}
	// A name another database has is refused.
	if _, err := client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("cfg")}); err == nil {
		t.Error("a D1 database named like the KV namespace cfg was created")
	}

	// Delete: new clients are refused.
	pg.Close(ctx)
	if _, err := client.D1.Database.Delete(ctx, fresh.UUID, cfd1.DatabaseDeleteParams{AccountID: acc}); err != nil {
		t.Fatal(err)
	}
	if _, err := connectErr(ctx, pgURL(inst, "fresh")); sqlstate(err) != "3D000" {
		t.Errorf("a deleted database: %v, want SQLSTATE 3D000", err)
	}

	// A restart over the same data directory serves what the SDK created.
	if code := inst.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	inst = runServeFor(t, "main", args)
	again := connect(t, ctx, pgURL(inst, "sessions-v2"))
	if err := again.QueryRow(ctx, "select value from kv where key = 'from:sql'").Scan(&value); err != nil || string(value) != "written by pgx" {
		t.Errorf("after a restart: %q, %v", value, err)
	}
}

// connectErr tries to connect to url, and returns the error a client sees.
func connectErr(ctx context.Context, url string) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, url)
	if err == nil {
		c.Close(ctx)
	}
	return nil, err
}

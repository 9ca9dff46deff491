package d1

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6"
	cfd1 "github.com/cloudflare/cloudflare-go/v6/d1"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/jackc/pgx/v5"
)

// These tests drive the REST API with Cloudflare's official Go SDK, pointed at the handler, and
// check what it wrote over SQL (pgx, through the same DB a pool would dial).

const account = "acc123"

// sdkEnv is an API server over a catalog with a data directory, and an SDK client for it.
type sdkEnv struct {
	client  *cloudflare.Client
	catalog *Catalog
	dir     string
	srv     *httptest.Server

	mu       sync.Mutex
	attached map[string]*DB // what Attach was handed, by name
}

func newSDKEnv(t *testing.T) *sdkEnv {
	t.Helper()
	env := &sdkEnv{dir: filepath.Join(t.TempDir(), "d1"), attached: map[string]*DB{}}
	env.catalog = env.newCatalog()
	main := openDB(t)
	env.catalog.Add("main", main)
	env.attached["main"] = main // as serve attaches configured databases itself
	t.Cleanup(env.catalog.Close)
	env.srv = httptest.NewServer(NewHTTPAPI(HTTPConfig{Catalog: env.catalog, Token: apiToken}))
	t.Cleanup(env.srv.Close)
	env.client = cloudflare.NewClient(option.WithBaseURL(env.srv.URL), option.WithAPIToken(apiToken), option.WithMaxRetries(0))
	return env
}

func (env *sdkEnv) newCatalog() *Catalog {
	return NewCatalog(CatalogConfig{
		Dir: env.dir,
		Attach: func(name string, db *DB) error {
			env.mu.Lock()
			defer env.mu.Unlock()
			if name == "refused" {
				return errors.New("a database named refused is served already")
			}
			env.attached[name] = db
			return nil
		},
		Detach: func(name string) {
			env.mu.Lock()
			defer env.mu.Unlock()
			delete(env.attached, name)
		},
	})
}

func (env *sdkEnv) sql(t *testing.T, name string) *pgx.Conn {
	t.Helper()
	env.mu.Lock()
	db := env.attached[name]
	env.mu.Unlock()
	if db == nil {
		t.Fatalf("database %s was not attached", name)
	}
	return connect(t, db, pgx.QueryExecModeCacheStatement)
}

// apiError is err as the SDK reports an API failure: the HTTP status and the first code.
func apiError(t *testing.T, err error) (int, int64, string) {
	t.Helper()
	var e *cloudflare.Error
	if !errors.As(err, &e) || len(e.Errors) == 0 {
		t.Fatalf("error %v is not an API error", err)
	}
	return e.StatusCode, e.Errors[0].Code, e.Errors[0].Message
}

func TestSDKCreatesListsGetsUpdatesAndDeletesDatabases(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	acc := cloudflare.F(account)

	created, err := env.client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("fresh"),
		PrimaryLocationHint: cloudflare.F(cfd1.DatabaseNewParamsPrimaryLocationHintWeur)})
	if err != nil {
		t.Fatal(err)
	}
	if created.Name != "fresh" || !validUUID(created.UUID) || created.CreatedAt.IsZero() || created.ReadReplication.Mode != "disabled" {
		t.Errorf("created %+v", created)
	}
	if _, err := os.Stat(filepath.Join(env.dir, created.UUID+".sqlite")); err != nil {
		t.Errorf("the new database's file: %v", err)
	}
	// Usable at once over SQL, and what SQL writes the SDK reads.
	c := env.sql(t, "fresh")
	if _, err := c.Exec(ctx, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO notes (body) VALUES ($1)", "over SQL"); err != nil {
		t.Fatal(err)
	}

	got, err := env.client.D1.Database.Get(ctx, created.UUID, cfd1.DatabaseGetParams{AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "fresh" || got.NumTables != 1 || got.FileSize <= 0 || got.Version != "production" {
		t.Errorf("get by UUID: %+v", got)
	}
	if byName, err := env.client.D1.Database.Get(ctx, "fresh", cfd1.DatabaseGetParams{AccountID: acc}); err != nil || byName.UUID != created.UUID {
		t.Errorf("get by name: %+v, %v", byName, err)
	}

	if _, err := env.client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("fresh")}); err == nil {
		t.Error("a second database named fresh was created")
	} else if status, code, _ := apiError(t, err); status != 409 || code != apiCodeConflict {
		t.Errorf("a taken name: %d %d", status, code)
	}
	if _, err := env.client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("no/slash")}); err == nil {
		t.Error("a name with a slash was accepted")
	}
	if _, err := env.client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("refused")}); err == nil {
		t.Error("a database Attach refused was created")
	} else if _, _, msg := apiError(t, err); !strings.Contains(msg, "served already") {
		t.Errorf("Attach's refusal: %q", msg)
	}
	for _, name := range []string{"second", "third"} {
		if _, err := env.client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F(name)}); err != nil {
			t.Fatal(err)
		}
	}

	// List: pages, the name filter, and the auto-pager over every page.
	page, err := env.client.D1.Database.List(ctx, cfd1.DatabaseListParams{AccountID: acc, PerPage: cloudflare.F(2.0), Page: cloudflare.F(2.0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Result) != 2 || page.Result[0].Name != "second" || page.Result[1].Name != "third" || page.ResultInfo.Page != 2 || !strings.Contains(page.ResultInfo.JSON.RawJSON(), `"total_count":4`) {
		t.Errorf("page 2 of 2 per page: %+v %+v", page.Result, page.ResultInfo)
	}
	var names []string
	pager := env.client.D1.Database.ListAutoPaging(ctx, cfd1.DatabaseListParams{AccountID: acc, PerPage: cloudflare.F(1.0)})
	for pager.Next() {
		names = append(names, pager.Current().Name)
	}
	if err := pager.Err(); err != nil || strings.Join(names, ",") != "fresh,main,second,third" {
		t.Errorf("every page: %v, %v", names, err)
	}
	filtered, err := env.client.D1.Database.List(ctx, cfd1.DatabaseListParams{AccountID: acc, Name: cloudflare.F("ir")})
	if err != nil || len(filtered.Result) != 1 || filtered.Result[0].Name != "third" {
		t.Errorf("name filter: %+v, %v", filtered, err)
	}

	// Update (PUT) and edit (PATCH) record the read replication mode.
	up, err := env.client.D1.Database.Update(ctx, created.UUID, cfd1.DatabaseUpdateParams{AccountID: acc,
		ReadReplication: cloudflare.F(cfd1.DatabaseUpdateParamsReadReplication{Mode: cloudflare.F(cfd1.DatabaseUpdateParamsReadReplicationModeAuto)})})
	if err != nil || up.ReadReplication.Mode != "auto" {
		t.Errorf("update: %+v, %v", up, err)
	}
	ed, err := env.client.D1.Database.Edit(ctx, "fresh", cfd1.DatabaseEditParams{AccountID: acc,
		ReadReplication: cloudflare.F(cfd1.DatabaseEditParamsReadReplication{Mode: cloudflare.F(cfd1.DatabaseEditParamsReadReplicationModeDisabled)})})
	if err != nil || ed.ReadReplication.Mode != "disabled" {
		t.Errorf("edit: %+v, %v", ed, err)
	}

	// Delete: gone from the API, from Attach's side, and from disk; a configured one stays.
	if _, err := env.client.D1.Database.Delete(ctx, created.UUID, cfd1.DatabaseDeleteParams{AccountID: acc}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.D1.Database.Get(ctx, created.UUID, cfd1.DatabaseGetParams{AccountID: acc}); err == nil {
		t.Error("a deleted database is still there")
	} else if status, code, _ := apiError(t, err); status != 404 || code != apiCodeNoDatabase {
		t.Errorf("get after delete: %d %d", status, code)
	}
	if _, err := os.Stat(filepath.Join(env.dir, created.UUID+".sqlite")); !os.IsNotExist(err) {
		t.Errorf("the deleted database's file: %v", err)
	}
	env.mu.Lock()
	_, still := env.attached["fresh"]
	env.mu.Unlock()
	if still {
		t.Error("a deleted database was not detached")
	}
	if _, err := env.client.D1.Database.Delete(ctx, "main", cfd1.DatabaseDeleteParams{AccountID: acc}); err == nil {
		t.Error("a configured database was deleted")
	} else if status, _, _ := apiError(t, err); status != 409 {
		t.Errorf("deleting a configured database: %d", status)
	}

	// The created databases are served again by the next process over the same directory.
	env.catalog.Close()
	env.attached = map[string]*DB{}
	next := env.newCatalog()
	if err := next.Load(); err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if e, ok := next.lookup("second"); !ok || e.configured {
		t.Errorf("after a restart, second is %+v, %v", e, ok)
	}
	if len(env.attached) != 2 {
		t.Errorf("after a restart, attached %v; want second and third", env.attached)
	}
}

func TestSDKQueryRunsOneSeveralAndBatchedStatementsWithD1Meta(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	acc := cloudflare.F(account)
	query := func(body cfd1.DatabaseQueryParamsBodyUnion) []cfd1.QueryResult {
		t.Helper()
		res, err := env.client.D1.Database.Query(ctx, "main", cfd1.DatabaseQueryParams{AccountID: acc, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return res.Result
	}

	several := query(cfd1.DatabaseQueryParamsBodyD1SingleQuery{Sql: cloudflare.F(
		"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES (?1); INSERT INTO t (v) VALUES (?1)"),
		Params: cloudflare.F([]string{"x"})})
	if len(several) != 3 || !several[2].Success || several[2].Meta.LastRowID != 2 || several[2].Meta.Changes != 1 ||
		!several[2].Meta.ChangedDB || several[2].Meta.RowsWritten != 1 || several[2].Meta.SizeAfter <= 0 || !several[2].Meta.ServedByPrimary {
		t.Errorf("several statements: %+v", several)
	}
	one := query(cfd1.DatabaseQueryParamsBodyD1SingleQuery{Sql: cloudflare.F("SELECT id, v FROM t WHERE id = ?"), Params: cloudflare.F([]string{"2"})})
	if len(one) != 1 || len(one[0].Results) != 1 || one[0].Meta.RowsRead != 1 || one[0].Meta.ChangedDB {
		t.Fatalf("one statement: %+v", one)
	}
	if row := one[0].Results[0].(map[string]any); row["id"] != 2.0 || row["v"] != "x" {
		t.Errorf("row %v", row)
	}
	batch := query(cfd1.DatabaseQueryParamsBodyMultipleQueries{Batch: cloudflare.F([]cfd1.DatabaseQueryParamsBodyMultipleQueriesBatch{
		{Sql: cloudflare.F("INSERT INTO t (v) VALUES (?)"), Params: cloudflare.F([]string{"batched"})},
		{Sql: cloudflare.F("UPDATE t SET v = ?2 WHERE v = ?1"), Params: cloudflare.F([]string{"x", "y"})},
		{Sql: cloudflare.F("SELECT count(*) AS n FROM t")},
	})})
	if len(batch) != 3 || batch[0].Meta.LastRowID != 3 || batch[1].Meta.Changes != 2 || batch[2].Results[0].(map[string]any)["n"] != 3.0 {
		t.Errorf("batch: %+v", batch)
	}
	// One transaction: a failing statement undoes the batch's earlier ones.
	_, err := env.client.D1.Database.Query(ctx, "main", cfd1.DatabaseQueryParams{AccountID: acc, Body: cfd1.DatabaseQueryParamsBodyMultipleQueries{
		Batch: cloudflare.F([]cfd1.DatabaseQueryParamsBodyMultipleQueriesBatch{
			{Sql: cloudflare.F("DELETE FROM t")},
			{Sql: cloudflare.F("SELECT * FROM missing")},
		})}})
	if status, code, msg := apiError(t, err); status != 400 || code != apiCodeQuery || !strings.Contains(msg, "no such table: missing") {
		t.Errorf("a failing batch: %d %d %q", status, code, msg)
	}
	var n int
	var vs string
	if err := env.sql(t, "main").QueryRow(ctx, "SELECT count(*), group_concat(v, ',') FROM (SELECT v FROM t ORDER BY id)").Scan(&n, &vs); err != nil || n != 3 || vs != "y,y,batched" {
		t.Errorf("over SQL after the batches: %d %q, %v", n, vs, err)
	}
}

func TestSDKRawAnswersColumnsAndRowsAsArrays(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	c := env.sql(t, "main")
	if _, err := c.Exec(ctx, "CREATE TABLE t (a INTEGER, b TEXT, c BLOB); INSERT INTO t VALUES (1, 'one', x'0102'), (2, NULL, NULL)"); err != nil {
		t.Fatal(err)
	}
	res, err := env.client.D1.Database.Raw(ctx, "main", cfd1.DatabaseRawParams{AccountID: cloudflare.F(account),
		Body: cfd1.DatabaseRawParamsBodyMultipleQueries{Batch: cloudflare.F([]cfd1.DatabaseRawParamsBodyMultipleQueriesBatch{
			{Sql: cloudflare.F("SELECT a, b, c, a AS a FROM t ORDER BY a")},
			{Sql: cloudflare.F("SELECT count(*) FROM t WHERE b = ?"), Params: cloudflare.F([]string{"one"})},
		})}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Result) != 2 {
		t.Fatalf("%d results", len(res.Result))
	}
	r := res.Result[0].Results
	if strings.Join(r.Columns, ",") != "a,b,c,a" || len(r.Rows) != 2 || r.Rows[0][1] != "one" || r.Rows[1][1] != nil ||
		len(r.Rows[0][2].([]any)) != 2 || r.Rows[0][3] != 1.0 || res.Result[0].Meta.RowsRead != 2 {
		t.Errorf("raw: %+v", res.Result[0])
	}
	if rows := res.Result[1].Results.Rows; len(rows) != 1 || rows[0][0] != 1.0 {
		t.Errorf("raw with params: %+v", res.Result[1])
	}
}

func TestSDKExportAndImportCarryADatabaseAcross(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	acc := cloudflare.F(account)
	c := env.sql(t, "main")
	for _, q := range []string{
		"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)",
		"INSERT INTO t VALUES (1, 'it''s', 2.0, x'00ff'), (2, NULL, 1e300, NULL)",
		"CREATE INDEX t_v ON t (v)",
		"CREATE VIEW tv AS SELECT v FROM t",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exp, err := env.client.D1.Database.Export(ctx, "main", cfd1.DatabaseExportParams{AccountID: acc,
		OutputFormat: cloudflare.F(cfd1.DatabaseExportParamsOutputFormatPolling)})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Status != "complete" || exp.Result.SignedURL == "" {
		t.Fatalf("export: %+v", exp)
	}
	// The signed URL needs no token, as an R2 presigned URL needs none.
	resp, err := http.Get(exp.Result.SignedURL)
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(dump), `INSERT INTO "t" VALUES(1,'it''s',2.0,X'00ff');`) {
		t.Fatalf("dump %d:\n%s", resp.StatusCode, dump)
	}

	if _, err := env.client.D1.Database.New(ctx, cfd1.DatabaseNewParams{AccountID: acc, Name: cloudflare.F("copy")}); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(dump)
	etag := hex.EncodeToString(sum[:])
	initRes, err := env.client.D1.Database.Import(ctx, "copy", cfd1.DatabaseImportParams{AccountID: acc,
		Body: cfd1.DatabaseImportParamsBodyInit{Action: cloudflare.F(cfd1.DatabaseImportParamsBodyInitActionInit), Etag: cloudflare.F(etag)}})
	if err != nil || initRes.UploadURL == "" {
		t.Fatalf("import init: %+v, %v", initRes, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, initRes.UploadURL, strings.NewReader(string(dump)))
	up, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	up.Body.Close()
	if up.StatusCode != 200 || up.Header.Get("ETag") != `"`+etag+`"` {
		t.Fatalf("upload: %d, ETag %q", up.StatusCode, up.Header.Get("ETag"))
	}
	ingest, err := env.client.D1.Database.Import(ctx, "copy", cfd1.DatabaseImportParams{AccountID: acc,
		Body: cfd1.DatabaseImportParamsBodyIngest{Action: cloudflare.F(cfd1.DatabaseImportParamsBodyIngestActionIngest),
			Etag: cloudflare.F(etag), Filename: cloudflare.F(initRes.Filename)}})
	if err != nil || ingest.Status != "complete" || ingest.Result.NumQueries < 4 {
		t.Fatalf("ingest: %+v, %v", ingest, err)
	}
	poll, err := env.client.D1.Database.Import(ctx, "copy", cfd1.DatabaseImportParams{AccountID: acc,
		Body: cfd1.DatabaseImportParamsBodyPoll{Action: cloudflare.F(cfd1.DatabaseImportParamsBodyPollActionPoll), CurrentBookmark: cloudflare.F(ingest.AtBookmark)}})
	if err != nil || poll.Status != "complete" || poll.Result.NumQueries != ingest.Result.NumQueries || poll.Result.Meta.RowsWritten != 2 {
		t.Errorf("poll: %+v, %v", poll, err)
	}

	var v string
	var r float64
	var b []byte
	copyConn := env.sql(t, "copy")
	if err := copyConn.QueryRow(ctx, "SELECT v, r, b FROM t WHERE id = 1").Scan(&v, &r, &b); err != nil || v != "it's" || r != 2.0 || hex.EncodeToString(b) != "00ff" {
		t.Errorf("the imported row: %q %v %x, %v", v, r, b, err)
	}
	var typ string
	if err := copyConn.QueryRow(ctx, "SELECT typeof(r) FROM t WHERE id = 1").Scan(&typ); err != nil || typ != "real" {
		t.Errorf("a REAL of integral value came back as %q, %v", typ, err)
	}
	var views int
	if err := copyConn.QueryRow(ctx, "SELECT count(*) FROM sqlite_schema WHERE type IN ('view', 'index')").Scan(&views); err != nil || views != 2 {
		t.Errorf("the index and view: %d, %v", views, err)
	}
	// An upload whose content is not the etag's is refused.
	initRes, _ = env.client.D1.Database.Import(ctx, "copy", cfd1.DatabaseImportParams{AccountID: acc,
		Body: cfd1.DatabaseImportParamsBodyInit{Action: cloudflare.F(cfd1.DatabaseImportParamsBodyInitActionInit), Etag: cloudflare.F(etag)}})
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, initRes.UploadURL, strings.NewReader("DROP TABLE t;"))
	if up, err := http.DefaultClient.Do(req); err != nil || up.StatusCode != 400 {
		t.Errorf("a mismatched upload: %v, %v", up, err)
	}
}

func TestSDKTimeTravelAnswersWhyItCannot(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	_, err := env.client.D1.Database.TimeTravel.GetBookmark(ctx, "main", cfd1.DatabaseTimeTravelGetBookmarkParams{AccountID: cloudflare.F(account)})
	if status, code, msg := apiError(t, err); status != 501 || code != 10405 || !strings.Contains(msg, "time travel") {
		t.Errorf("get bookmark: %d %d %q", status, code, msg)
	}
	_, err = env.client.D1.Database.TimeTravel.Restore(ctx, "main", cfd1.DatabaseTimeTravelRestoreParams{AccountID: cloudflare.F(account)})
	if status, code, _ := apiError(t, err); status != 501 || code != 10405 {
		t.Errorf("restore: %d %d", status, code)
	}
}

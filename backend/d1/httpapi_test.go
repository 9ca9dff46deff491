package d1

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

const apiToken = "s3cret-token"

// apiResponse is Cloudflare's envelope, with D1's result objects.
type apiResponse struct {
	Result []struct {
		Results []map[string]any `json:"results"`
		Success bool             `json:"success"`
		Meta    struct {
			Changes     int64   `json:"changes"`
			Duration    float64 `json:"duration"`
			LastRowID   int64   `json:"last_row_id"`
			RowsRead    int64   `json:"rows_read"`
			RowsWritten int64   `json:"rows_written"`
		} `json:"meta"`
	} `json:"result"`
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Messages []any `json:"messages"`
}

// post sends a query to the API over real HTTP and decodes the answer.
func post(t *testing.T, srv *httptest.Server, path, auth, body string) (int, apiResponse, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(res.Body).Decode(&raw); err != nil {
		t.Fatalf("status %d, body not JSON: %v", res.StatusCode, err)
	}
	var out apiResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("body %s: %v", raw, err)
	}
	return res.StatusCode, out, string(raw)
}

func apiServer(t *testing.T, token string) (*httptest.Server, *DB) {
	t.Helper()
	db := openDB(t)
	srv := httptest.NewServer(NewHTTPAPI(HTTPConfig{Catalog: catalogOf(db), Token: token}))
	t.Cleanup(srv.Close)
	return srv, db
}

// catalogOf is a catalog holding db as the configured database "main".
func catalogOf(db *DB) *Catalog {
	c := NewCatalog(CatalogConfig{})
	c.Add("main", db)
	return c
}

const queryPath = "/accounts/acc123/d1/database/main/query"

// runOK runs sql with params and fails the test unless it succeeds.
func runOK(t *testing.T, srv *httptest.Server, body string) apiResponse {
	t.Helper()
	status, out, raw := post(t, srv, queryPath, "Bearer "+apiToken, body)
	if status != http.StatusOK || !out.Success {
		t.Fatalf("status %d: %s", status, raw)
	}
	return out
}

func TestQueryBindsParamsAndAnswersInD1Shape(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	runOK(t, srv, `{"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, n TEXT, ok BOOLEAN)"}`)
	out := runOK(t, srv, `{"sql": "INSERT INTO t (i, f, s, b, n, ok) VALUES (?, ?2, $3, ?4, ?5, ?6)",
		"params": [-42, 2.5, "héllo \"x\"", [0, 1, 254, 255], null, true]}`)
	meta := out.Result[0].Meta
	if meta.Changes != 1 || meta.LastRowID != 1 || meta.RowsWritten != 1 || meta.Duration < 0 {
		t.Errorf("insert meta = %+v", meta)
	}
	status, out, raw := post(t, srv, queryPath, "Bearer "+apiToken, `{"sql": "SELECT * FROM t WHERE i = ?", "params": [-42]}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	if !strings.Contains(raw, `"results":[{"id":1,"i":-42,"f":2.5,"s":"héllo \"x\"","b":[0,1,254,255],"n":null,"ok":1}]`) {
		t.Errorf("results are not D1's, in column order: %s", raw)
	}
	if !strings.Contains(raw, `"success":true,"errors":[],"messages":[]}`) {
		t.Errorf("envelope: %s", raw)
	}
	if m := out.Result[0].Meta; m.Changes != 0 || m.RowsRead != 1 || m.RowsWritten != 0 {
		t.Errorf("select meta = %+v", m)
	}
}

func TestSeveralStatementsGiveOneResultEach(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	out := runOK(t, srv, `{"sql": "CREATE TABLE t (k TEXT); INSERT INTO t VALUES ('a'), ('b');; SELECT k FROM t ORDER BY k; SELECT count(*) AS n FROM t"}`)
	if len(out.Result) != 4 {
		t.Fatalf("%d results, want 4", len(out.Result))
	}
	if out.Result[1].Meta.Changes != 2 {
		t.Errorf("INSERT changes = %d, want 2", out.Result[1].Meta.Changes)
	}
	if got := out.Result[2].Results; len(got) != 2 || got[0]["k"] != "a" || got[1]["k"] != "b" {
		t.Errorf("SELECT k = %v", got)
	}
	if got := out.Result[3].Results; len(got) != 1 || got[0]["n"] != float64(2) {
		t.Errorf("SELECT count = %v", got)
	}
}

func TestAFailingStatementUndoesTheWholeBatch(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	runOK(t, srv, `{"sql": "CREATE TABLE t (k TEXT PRIMARY KEY)"}`)
	status, out, raw := post(t, srv, queryPath, "Bearer "+apiToken, `{"sql": "INSERT INTO t VALUES ('a'); INSERT INTO t VALUES ('a')"}`)
	if status != http.StatusBadRequest || out.Success || len(out.Errors) != 1 || out.Errors[0].Code != 7500 ||
		!strings.Contains(out.Errors[0].Message, "UNIQUE constraint failed") {
		t.Fatalf("status %d: %s", status, raw)
	}
	got := runOK(t, srv, `{"sql": "SELECT count(*) AS n FROM t"}`)
	if n := got.Result[0].Results[0]["n"]; n != float64(0) {
		t.Errorf("count after a failed batch = %v, want 0", n)
	}
}

func TestFailuresAnswerWithCloudflaresErrorEnvelope(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	runOK(t, srv, `{"sql": "CREATE TABLE t (k TEXT)"}`)
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		code   int
		msg    string
	}{
		{"an unknown table is a SQL error", queryPath, `{"sql": "SELECT * FROM nope"}`, 400, 7500, "no such table: nope"},
		{"a syntax error is a SQL error", queryPath, `{"sql": "SELEC 1"}`, 400, 7500, "syntax error"},
		{"too few params is refused", queryPath, `{"sql": "SELECT ?1, ?2", "params": [1]}`, 400, 7500, "wrong number of parameter bindings"},
		{"transaction control is refused", queryPath, `{"sql": "BEGIN; INSERT INTO t VALUES (1); COMMIT"}`, 400, 7500, "already run as one transaction"},
		{"a body that is not JSON is refused", queryPath, `{"sql": `, 400, 7400, "must be JSON"},
		{"a missing sql is refused", queryPath, `{"params": []}`, 400, 7400, "sql is required"},
		{"an object param is refused", queryPath, `{"sql": "SELECT ?", "params": [{"a": 1}]}`, 400, 7400, "params[0]"},
		{"a non-byte array param is refused", queryPath, `{"sql": "SELECT ?", "params": [[1, 256]]}`, 400, 7400, "byte values"},
		{"only comments is no statement", queryPath, `{"sql": "-- nothing"}`, 400, 7500, "no statement"},
		{"an unknown database is 404", "/accounts/acc123/d1/database/other/query", `{"sql": "SELECT 1"}`, 404, 7404, `"other" could not be found`},
		{"an unknown path is 404", "/accounts/acc123/d1/database/main/nope", `{}`, 404, 7003, "No route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out, raw := post(t, srv, tt.path, "Bearer "+apiToken, tt.body)
			if status != tt.status || out.Success || len(out.Errors) != 1 || out.Errors[0].Code != tt.code ||
				!strings.Contains(out.Errors[0].Message, tt.msg) {
				t.Fatalf("status %d: %s; want %d, code %d, message with %q", status, raw, tt.status, tt.code, tt.msg)
			}
			if !strings.Contains(raw, `"result":null`) || !strings.Contains(raw, `"messages":[]`) {
				t.Errorf("envelope: %s", raw)
			}
		})
	}
}

func TestOnlyTheConfiguredBearerTokenGetsIn(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + apiToken, "Bearer " + apiToken + "x", apiToken} {
		status, out, raw := post(t, srv, queryPath, auth, `{"sql": "SELECT 1"}`)
		if status != http.StatusUnauthorized || out.Success || out.Errors[0].Code != 10000 {
			t.Errorf("Authorization %q: status %d: %s", auth, status, raw)
		}
	}
	// Nor does a wrong token learn which databases exist.
	if status, _, _ := post(t, srv, "/accounts/a/d1/database/other/query", "Bearer wrong", `{}`); status != http.StatusUnauthorized {
		t.Errorf("unknown database with a wrong token: status %d, want 401", status)
	}
	if status, _, raw := post(t, srv, queryPath, "bearer "+apiToken, `{"sql": "SELECT 1"}`); status != http.StatusOK {
		t.Errorf("the scheme is case-insensitive: status %d: %s", status, raw)
	}
}

func TestAnEmptyTokenDisablesTheAPI(t *testing.T) {
	srv, _ := apiServer(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		status, out, raw := post(t, srv, queryPath, auth, `{"sql": "SELECT 1"}`)
		if status != http.StatusForbidden || out.Success || !strings.Contains(out.Errors[0].Message, "disabled") {
			t.Errorf("Authorization %q: status %d: %s", auth, status, raw)
		}
	}
}

func TestQueryNeedsPOST(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, srv.URL+queryPath, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET: status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestABodyOver10MiBIsRefused(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	body := `{"sql": "SELECT ?", "params": ["` + strings.Repeat("x", maxQueryBody) + `"]}`
	status, out, raw := post(t, srv, queryPath, "Bearer "+apiToken, body)
	if status != http.StatusRequestEntityTooLarge || out.Success {
		t.Errorf("status %d: %.200s", status, raw)
	}
}

func TestWritesThroughTheAPIAndThroughPostgresSeeEachOther(t *testing.T) {
	srv, db := apiServer(t, apiToken)
	c := connect(t, db, pgx.QueryExecModeCacheStatement)
	ctx := testContext(t)
	runOK(t, srv, `{"sql": "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('api', 1)"}`)
	var v int64
	if err := c.QueryRow(ctx, `SELECT v FROM t WHERE k = $1`, "api").Scan(&v); err != nil || v != 1 {
		t.Fatalf("PostgreSQL session reads %d, %v; want the API's write", v, err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO t VALUES ($1, $2)`, "pg", int64(2)); err != nil {
		t.Fatal(err)
	}
	out := runOK(t, srv, `{"sql": "SELECT v FROM t WHERE k = ?", "params": ["pg"]}`)
	if got := out.Result[0].Results; len(got) != 1 || got[0]["v"] != float64(2) {
		t.Errorf("API reads %v; want the PostgreSQL session's write", got)
	}
}

func TestFloatsThatJSONCannotHoldAreNull(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	_, _, raw := post(t, srv, queryPath, "Bearer "+apiToken, `{"sql": "SELECT 1e999 AS inf, 0.1 AS f, 9007199254740993 AS big"}`)
	if !strings.Contains(raw, `[{"inf":null,"f":0.1,"big":9007199254740993}]`) {
		t.Errorf("results: %s", raw)
	}
}

func TestDuplicateColumnNamesKeepTheLastValue(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	_, _, raw := post(t, srv, queryPath, "Bearer "+apiToken, `{"sql": "SELECT 1 AS a, 2 AS b, 3 AS a"}`)
	if !strings.Contains(raw, `[{"b":2,"a":3}]`) {
		t.Errorf("results: %s", raw)
	}
}

func TestWhatABatchSetsOnItsConnectionDoesNotReachTheNext(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	runOK(t, srv, `{"sql": "PRAGMA foreign_keys = OFF; CREATE TEMP TABLE scratch (a)"}`)
	for range 2 * maxIdleConns {
		out := runOK(t, srv, `{"sql": "PRAGMA foreign_keys"}`)
		if got := out.Result[0].Results[0]["foreign_keys"]; got != float64(1) {
			t.Fatalf("foreign_keys = %v in a later batch, want 1", got)
		}
		if status, _, raw := post(t, srv, queryPath, "Bearer "+apiToken, `{"sql": "SELECT * FROM temp.scratch"}`); status != http.StatusBadRequest {
			t.Fatalf("a later batch sees the temp table: %d %s", status, raw)
		}
	}
}

func TestClosingTheDBClosesTheConnectionsKeptForTheAPI(t *testing.T) {
	srv, db := apiServer(t, apiToken)
	runOK(t, srv, `{"sql": "SELECT 1"}`)
	if _, ok := idle.Load(db); !ok {
		t.Fatal("no connection kept after a batch")
	}
	db.Close()
	if _, ok := idle.Load(db); ok {
		t.Error("connections still kept after Close")
	}
	if status, out, raw := post(t, srv, queryPath, "Bearer "+apiToken, `{"sql": "SELECT 1"}`); status != http.StatusServiceUnavailable || out.Success {
		t.Errorf("a query after Close: %d %s", status, raw)
	}
}

func TestConcurrentRequestsShareKeptConnectionsWithoutLosingWrites(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	runOK(t, srv, `{"sql": "CREATE TABLE t (w INTEGER, i INTEGER)"}`)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf(`{"sql": "INSERT INTO t VALUES (?1, ?2); SELECT count(*) AS n FROM t WHERE w = ?1", "params": [%d, %d]}`, w, i)
				status, out, raw := post(t, srv, queryPath, "Bearer "+apiToken, body)
				if status != http.StatusOK || out.Result[1].Results[0]["n"] != float64(i+1) {
					t.Errorf("writer %d, insert %d: %d %s", w, i, status, raw)
					return
				}
			}
		})
	}
	wg.Wait()
	out := runOK(t, srv, `{"sql": "SELECT count(*) AS n FROM t"}`)
	if n := out.Result[0].Results[0]["n"]; n != float64(writers*each) {
		t.Errorf("%v rows, want %d", n, writers*each)
	}
}

// BenchmarkHTTPQueryPointRead measures one query through the handler, without the network:
// each opens a SQLite connection of its own.
func BenchmarkHTTPQueryPointRead(b *testing.B) {
	db := openDB(b)
	h := NewHTTPAPI(HTTPConfig{Catalog: catalogOf(db), Token: apiToken})
	run := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, queryPath, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := run(`{"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')"}`); rec.Code != 200 {
		b.Fatal(rec.Body.String())
	}
	b.ReportAllocs()
	for b.Loop() {
		if rec := run(`{"sql": "SELECT v FROM t WHERE id = ?", "params": [1]}`); rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
	}
}

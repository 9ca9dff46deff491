package kv

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	cfkv "github.com/cloudflare/cloudflare-go/v6/kv"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/jackc/pgx/v5"
)

// These tests drive the REST API with Cloudflare's official Go SDK, pointed at the handler, and
// check what it wrote over SQL (pgx, through the same Namespace a pool would dial), and the
// other way round.

const account = "acc"

type sdkEnv struct {
	client  *cloudflare.Client
	catalog *Catalog
	dir     string
	cacheID string // the configured namespace "cache"
	ns      *Namespace

	mu       sync.Mutex
	attached map[string]*Namespace
}

func newSDKEnv(t *testing.T) *sdkEnv {
	t.Helper()
	env := &sdkEnv{dir: filepath.Join(t.TempDir(), "kv"), attached: map[string]*Namespace{}}
	env.catalog = env.newCatalog()
	env.ns = openNS(t)
	env.catalog.Add("cache", env.ns)
	e, _ := env.catalog.lookup("cache")
	env.cacheID = e.ID
	t.Cleanup(env.catalog.Close)
	srv := httptest.NewServer(NewHTTPAPI(HTTPConfig{Catalog: env.catalog, Token: apiToken}))
	t.Cleanup(srv.Close)
	env.client = cloudflare.NewClient(option.WithBaseURL(srv.URL), option.WithAPIToken(apiToken), option.WithMaxRetries(0))
	return env
}

func (env *sdkEnv) newCatalog() *Catalog {
	return NewCatalog(CatalogConfig{
		Dir: env.dir,
		Attach: func(title string, ns *Namespace) error {
			env.mu.Lock()
			defer env.mu.Unlock()
			env.attached[title] = ns
			return nil
		},
		Detach: func(title string) {
			env.mu.Lock()
			defer env.mu.Unlock()
			delete(env.attached, title)
		},
	})
}

func apiError(t *testing.T, err error) (int, int64) {
	t.Helper()
	var e *cloudflare.Error
	if !errors.As(err, &e) || len(e.Errors) == 0 {
		t.Fatalf("error %v is not an API error", err)
	}
	return e.StatusCode, e.Errors[0].Code
}

func TestSDKCreatesListsGetsRenamesAndDeletesNamespaces(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	acc := cloudflare.F(account)
	created, err := env.client.KV.Namespaces.New(ctx, cfkv.NamespaceNewParams{AccountID: acc, Title: cloudflare.F("sessions")})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ID) != 32 || created.Title != "sessions" || !created.SupportsURLEncoding {
		t.Errorf("created %+v", created)
	}
	// Usable at once over SQL, under its title.
	env.mu.Lock()
	ns := env.attached["sessions"]
	env.mu.Unlock()
	if ns == nil {
		t.Fatal("the new namespace was not attached")
	}
	if _, err := connect(t, ns, pgx.QueryExecModeCacheStatement).Exec(ctx, "INSERT INTO kv (key, value) VALUES ('k', 'v')"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.KV.Namespaces.New(ctx, cfkv.NamespaceNewParams{AccountID: acc, Title: cloudflare.F("sessions")}); err == nil {
		t.Error("a second namespace titled sessions was created")
	} else if status, code := apiError(t, err); status != 409 || code != apiCodeTitleTaken {
		t.Errorf("a taken title: %d %d", status, code)
	}
	got, err := env.client.KV.Namespaces.Get(ctx, created.ID, cfkv.NamespaceGetParams{AccountID: acc})
	if err != nil || got.Title != "sessions" {
		t.Errorf("get: %+v, %v", got, err)
	}
	for _, title := range []string{"b", "a"} {
		if _, err := env.client.KV.Namespaces.New(ctx, cfkv.NamespaceNewParams{AccountID: acc, Title: cloudflare.F(title)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := env.client.KV.Namespaces.List(ctx, cfkv.NamespaceListParams{AccountID: acc, PerPage: cloudflare.F(2.0), Page: cloudflare.F(2.0),
		Order: cloudflare.F(cfkv.NamespaceListParamsOrderTitle), Direction: cloudflare.F(cfkv.NamespaceListParamsDirectionDesc)})
	if err != nil || len(page.Result) != 2 || page.Result[0].Title != "b" || page.Result[1].Title != "a" || page.ResultInfo.Page != 2 || !strings.Contains(page.ResultInfo.JSON.RawJSON(), `"total_count":4`) {
		t.Errorf("page 2, by title descending: %+v, %v", page, err)
	}
	var titles []string
	pager := env.client.KV.Namespaces.ListAutoPaging(ctx, cfkv.NamespaceListParams{AccountID: acc, PerPage: cloudflare.F(1.0)})
	for pager.Next() {
		titles = append(titles, pager.Current().Title)
	}
	if err := pager.Err(); err != nil || strings.Join(titles, ",") != "a,b,cache,sessions" {
		t.Errorf("every page: %v, %v", titles, err)
	}

	// Rename: SQL clients reach it under the new title; the ID and the data stay.
	renamed, err := env.client.KV.Namespaces.Update(ctx, created.ID, cfkv.NamespaceUpdateParams{AccountID: acc, Title: cloudflare.F("sessions-v2")})
	if err != nil || renamed.ID != created.ID || renamed.Title != "sessions-v2" {
		t.Fatalf("rename: %+v, %v", renamed, err)
	}
	env.mu.Lock()
	_, old := env.attached["sessions"]
	ns = env.attached["sessions-v2"]
	env.mu.Unlock()
	if old || ns == nil {
		t.Errorf("after a rename, attached %v", env.attached)
	}
	if _, err := env.client.KV.Namespaces.Update(ctx, env.cacheID, cfkv.NamespaceUpdateParams{AccountID: acc, Title: cloudflare.F("x")}); err == nil {
		t.Error("a configured namespace was renamed")
	}

	// A restart serves the created namespaces again, under their new titles.
	env.catalog.Close()
	env.attached = map[string]*Namespace{}
	next := env.newCatalog()
	if err := next.Load(); err != nil {
		t.Fatal(err)
	}
	if e, ok := next.lookup(created.ID); !ok || e.Title != "sessions-v2" {
		t.Errorf("after a restart: %+v, %v", e, ok)
	}
	var v []byte
	if err := connect(t, env.attached["sessions-v2"], pgx.QueryExecModeCacheStatement).QueryRow(ctx, "SELECT value FROM kv WHERE key = 'k'").Scan(&v); err != nil || string(v) != "v" {
		t.Errorf("the renamed namespace's data after a restart: %q, %v", v, err)
	}
	next.Close()
	env.catalog = env.newCatalog()
	if err := env.catalog.Load(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHTTPAPI(HTTPConfig{Catalog: env.catalog, Token: apiToken}))
	defer srv.Close()
	defer env.catalog.Close()
	client := cloudflare.NewClient(option.WithBaseURL(srv.URL), option.WithAPIToken(apiToken), option.WithMaxRetries(0))

	if _, err := client.KV.Namespaces.Delete(ctx, created.ID, cfkv.NamespaceDeleteParams{AccountID: acc}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.KV.Namespaces.Get(ctx, created.ID, cfkv.NamespaceGetParams{AccountID: acc}); err == nil {
		t.Error("a deleted namespace is still there")
	} else if status, code := apiError(t, err); status != 404 || code != apiCodeNoNamespace {
		t.Errorf("get after delete: %d %d", status, code)
	}
	if _, err := os.Stat(filepath.Join(env.dir, created.ID+".kv")); !os.IsNotExist(err) {
		t.Errorf("the deleted namespace's file: %v", err)
	}
}

func TestSDKValuesWithMetadataAndExpirationRoundTripThroughSQL(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	acc := cloudflare.F(account)
	values := env.client.KV.Namespaces.Values
	// The SDK writes a value with metadata as multipart/form-data.
	before := time.Now().Unix()
	_, err := values.Update(ctx, env.cacheID, "user:1", cfkv.NamespaceValueUpdateParams{AccountID: acc,
		Value:         cloudflare.F[cfkv.NamespaceValueUpdateParamsValueUnion](shared.UnionString("hello, world")),
		Metadata:      cloudflare.F[any](map[string]any{"plan": "pro", "n": 3}),
		ExpirationTTL: cloudflare.F(3600.0)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := values.Get(ctx, env.cacheID, "user:1", cfkv.NamespaceValueGetParams{AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	exp, _ := strconv.ParseInt(res.Header.Get("Expiration"), 10, 64)
	if string(body) != "hello, world" || exp < before+3600 || exp > before+3700 {
		t.Errorf("get: %q, expiration %d", body, exp)
	}
	meta, err := env.client.KV.Namespaces.Metadata.Get(ctx, env.cacheID, "user:1", cfkv.NamespaceMetadataGetParams{AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	// The SDK sends a map as parts "metadata.plan" and "metadata.n", as text.
	if m, ok := (*meta).(map[string]any); !ok || m["plan"] != "pro" || m["n"] != "3" {
		t.Errorf("metadata from a map: %#v", *meta)
	}
	// Over SQL: the value alone, not the multipart body, and its metadata and expiration.
	c := connect(t, env.ns, pgx.QueryExecModeCacheStatement)
	var value []byte
	var metadata string
	var expiration int64
	if err := c.QueryRow(ctx, "SELECT value, metadata, expiration FROM kv WHERE key = $1", "user:1").Scan(&value, &metadata, &expiration); err != nil {
		t.Fatal(err)
	}
	if string(value) != "hello, world" || metadata != `{"n":"3","plan":"pro"}` || expiration != exp {
		t.Errorf("over SQL: %q %s %d", value, metadata, expiration)
	}
	// Metadata given as JSON text, Cloudflare's documented form, keeps its types.
	if _, err := values.Update(ctx, env.cacheID, "typed", cfkv.NamespaceValueUpdateParams{AccountID: acc,
		Value:    cloudflare.F[cfkv.NamespaceValueUpdateParamsValueUnion](shared.UnionString("x")),
		Metadata: cloudflare.F[any](`{"n": 3, "tags": ["a"]}`)}); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT metadata FROM kv WHERE key = 'typed'").Scan(&metadata); err != nil || metadata != `{"n":3,"tags":["a"]}` {
		t.Errorf("metadata from JSON text: %s, %v", metadata, err)
	}
	// Written over SQL, read with the SDK.
	if _, err := c.Exec(ctx, `INSERT INTO kv (key, value, metadata) VALUES ('from:sql', '\x00ff'::bytea, '{"src":"sql"}')`); err != nil {
		t.Fatal(err)
	}
	res, err = values.Get(ctx, env.cacheID, "from:sql", cfkv.NamespaceValueGetParams{AccountID: acc})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "\x00\xff" {
		t.Errorf("a value put over SQL, read with the SDK: %q", body)
	}
	// A raw (non-multipart) body is the value as is; expiration in unix seconds.
	if _, err := values.Update(ctx, env.cacheID, "plain", cfkv.NamespaceValueUpdateParams{AccountID: acc,
		Value: cloudflare.F[cfkv.NamespaceValueUpdateParamsValueUnion](shared.UnionString("v")), Expiration: cloudflare.F(float64(before + 100))},
		option.WithRequestBody("application/octet-stream", []byte("raw bytes"))); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "SELECT value, expiration FROM kv WHERE key = 'plain'").Scan(&value, &expiration); err != nil || string(value) != "raw bytes" || expiration != before+100 {
		t.Errorf("a raw put: %q %d, %v", value, expiration, err)
	}
	if _, err := values.Delete(ctx, env.cacheID, "user:1", cfkv.NamespaceValueDeleteParams{AccountID: acc}); err != nil {
		t.Fatal(err)
	}
	if _, err := values.Get(ctx, env.cacheID, "user:1", cfkv.NamespaceValueGetParams{AccountID: acc}); err == nil {
		t.Error("a deleted key is still there")
	} else if status, code := apiError(t, err); status != 404 || code != apiCodeNoKey {
		t.Errorf("get after delete: %d %d", status, code)
	}
	if _, err := env.client.KV.Namespaces.Metadata.Get(ctx, env.cacheID, "user:1", cfkv.NamespaceMetadataGetParams{AccountID: acc}); err == nil {
		t.Error("metadata of a deleted key")
	}
}

func TestSDKListsKeysByPrefixInPagesWithACursor(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	c := connect(t, env.ns, pgx.QueryExecModeCacheStatement)
	for i := range 25 {
		if _, err := c.Exec(ctx, "INSERT INTO kv (key, value, metadata) VALUES ($1, 'v', $2)", "user:"+strconv.Itoa(100+i), `{"i":`+strconv.Itoa(i)+`}`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Exec(ctx, "INSERT INTO kv (key, value) VALUES ('other', 'v')"); err != nil {
		t.Fatal(err)
	}
	params := cfkv.NamespaceKeyListParams{AccountID: cloudflare.F(account), Prefix: cloudflare.F("user:"), Limit: cloudflare.F(10.0)}
	first, err := env.client.KV.Namespaces.Keys.List(ctx, env.cacheID, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Result) != 10 || first.ResultInfo.Cursor == "" || first.ResultInfo.Count != 10 || first.Result[0].Name != "user:100" {
		t.Errorf("first page: %+v", first)
	}
	if m, ok := first.Result[1].Metadata.(map[string]any); !ok || m["i"] != 1.0 {
		t.Errorf("a listed key's metadata: %v", first.Result[1].Metadata)
	}
	var names []string
	pager := env.client.KV.Namespaces.Keys.ListAutoPaging(ctx, env.cacheID, params)
	for pager.Next() {
		names = append(names, pager.Current().Name)
	}
	if err := pager.Err(); err != nil || len(names) != 25 || names[24] != "user:124" {
		t.Errorf("every page: %d keys, %v", len(names), err)
	}
}

func TestSDKBulkWritesReadsAndDeletes(t *testing.T) {
	env := newSDKEnv(t)
	ctx := testContext(t)
	acc := cloudflare.F(account)
	now := float64(time.Now().Unix())
	wrote, err := env.client.KV.Namespaces.BulkUpdate(ctx, env.cacheID, cfkv.NamespaceBulkUpdateParams{AccountID: acc, Body: []cfkv.NamespaceBulkUpdateParamsBody{
		{Key: cloudflare.F("text"), Value: cloudflare.F("plain text")},
		{Key: cloudflare.F("bin"), Value: cloudflare.F("AP8="), Base64: cloudflare.F(true)},
		{Key: cloudflare.F("json"), Value: cloudflare.F(`{"a":[1,2]}`), Metadata: cloudflare.F[any](map[string]any{"m": true}), Expiration: cloudflare.F(now + 600)},
		{Key: cloudflare.F("ttl"), Value: cloudflare.F("t"), ExpirationTTL: cloudflare.F(120.0)},
	}})
	if err != nil || wrote.SuccessfulKeyCount != 4 || len(wrote.UnsuccessfulKeys) != 0 {
		t.Fatalf("bulk write: %+v, %v", wrote, err)
	}
	c := connect(t, env.ns, pgx.QueryExecModeCacheStatement)
	var bin []byte
	var exp int64
	if err := c.QueryRow(ctx, "SELECT value FROM kv WHERE key = 'bin'").Scan(&bin); err != nil || string(bin) != "\x00\xff" {
		t.Errorf("a base64 value over SQL: %q, %v", bin, err)
	}
	if err := c.QueryRow(ctx, "SELECT expiration FROM kv WHERE key = 'json'").Scan(&exp); err != nil || exp != int64(now+600) {
		t.Errorf("a bulk expiration over SQL: %d, %v", exp, err)
	}

	read := func(params cfkv.NamespaceBulkGetParams) map[string]any {
		t.Helper()
		params.AccountID = acc
		res, err := env.client.KV.Namespaces.BulkGet(ctx, env.cacheID, params)
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Values map[string]any }
		if err := json.Unmarshal([]byte(res.JSON.RawJSON()), &out); err != nil {
			t.Fatalf("%s: %v", res.JSON.RawJSON(), err)
		}
		return out.Values
	}
	text := read(cfkv.NamespaceBulkGetParams{Keys: cloudflare.F([]string{"text", "json", "missing"})})
	if text["text"] != "plain text" || text["json"] != `{"a":[1,2]}` || text["missing"] != nil {
		t.Errorf("bulk read as text: %v", text)
	}
	asJSON := read(cfkv.NamespaceBulkGetParams{Keys: cloudflare.F([]string{"json"}), Type: cloudflare.F(cfkv.NamespaceBulkGetParamsTypeJson), WithMetadata: cloudflare.F(true)})
	j, _ := asJSON["json"].(map[string]any)
	if v, _ := j["value"].(map[string]any); v == nil || len(v["a"].([]any)) != 2 || j["metadata"].(map[string]any)["m"] != true || j["expiration"] != now+600 {
		t.Errorf("bulk read as JSON with metadata: %v", asJSON)
	}
	// The same through the Keys service, which the SDK keeps for older code.
	if res, err := env.client.KV.Namespaces.Keys.BulkGet(ctx, env.cacheID, cfkv.NamespaceKeyBulkGetParams{AccountID: acc, Keys: cloudflare.F([]string{"ttl"})}); err != nil || !strings.Contains(res.JSON.RawJSON(), `"ttl":"t"`) {
		t.Errorf("Keys.BulkGet: %v", err)
	}
	if res, err := env.client.KV.Namespaces.Keys.BulkUpdate(ctx, env.cacheID, cfkv.NamespaceKeyBulkUpdateParams{AccountID: acc,
		Body: []cfkv.NamespaceKeyBulkUpdateParamsBody{{Key: cloudflare.F("more"), Value: cloudflare.F("m")}}}); err != nil || res.SuccessfulKeyCount != 1 {
		t.Errorf("Keys.BulkUpdate: %+v, %v", res, err)
	}

	del, err := env.client.KV.Namespaces.BulkDelete(ctx, env.cacheID, cfkv.NamespaceBulkDeleteParams{AccountID: acc, Body: []string{"text", "bin", "missing"}})
	if err != nil || del.SuccessfulKeyCount != 3 {
		t.Errorf("bulk delete: %+v, %v", del, err)
	}
	if res, err := env.client.KV.Namespaces.Keys.BulkDelete(ctx, env.cacheID, cfkv.NamespaceKeyBulkDeleteParams{AccountID: acc, Body: []string{"more"}}); err != nil || res.SuccessfulKeyCount != 1 {
		t.Errorf("Keys.BulkDelete: %+v, %v", res, err)
	}
	var left []string
	rows, _ := c.Query(ctx, "SELECT key FROM kv ORDER BY key")
	for rows.Next() {
		var k string
		rows.Scan(&k)
		left = append(left, k)
	}
	if strings.Join(left, ",") != "json,ttl" {
		t.Errorf("after the bulk deletes, SQL lists %v", left)
	}
	// A pair the API refuses fails the whole write, before anything is stored.
	_, err = env.client.KV.Namespaces.BulkUpdate(ctx, env.cacheID, cfkv.NamespaceBulkUpdateParams{AccountID: acc, Body: []cfkv.NamespaceBulkUpdateParamsBody{
		{Key: cloudflare.F("ok"), Value: cloudflare.F("v")},
		{Key: cloudflare.F("bad"), Value: cloudflare.F("not base64!"), Base64: cloudflare.F(true)},
	}})
	if status, code := apiError(t, err); status != 400 || code != apiCodeBadRequest {
		t.Errorf("a bad pair: %d %d", status, code)
	}
	if err := c.QueryRow(ctx, "SELECT key FROM kv WHERE key = 'ok'").Scan(new(string)); !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("a refused bulk write stored a key: %v", err)
	}
}

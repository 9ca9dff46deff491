package kv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const apiToken = "kv-token"

const nsPath = "/accounts/acc/storage/kv/namespaces/cache"

func apiServer(t *testing.T, token string) (*httptest.Server, *Namespace) {
	t.Helper()
	ns := openNS(t)
	cat := NewCatalog(CatalogConfig{})
	cat.Add("cache", ns)
	srv := httptest.NewServer(NewHTTPAPI(HTTPConfig{Catalog: cat, Token: token}))
	t.Cleanup(srv.Close)
	return srv, ns
}

// do sends a request with the token and returns the status and body.
func do(t *testing.T, srv *httptest.Server, method, path string, body []byte) (int, []byte) {
	t.Helper()
	return doAuth(t, srv, method, path, body, "Bearer "+apiToken)
}

func doAuth(t *testing.T, srv *httptest.Server, method, path string, body []byte, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

type envelope struct {
	Result     json.RawMessage `json:"result"`
	ResultInfo struct {
		Count  int    `json:"count"`
		Cursor string `json:"cursor"`
	} `json:"result_info"`
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Messages []any `json:"messages"`
}

func decode(t *testing.T, body []byte) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return e
}

func TestPutGetAndDeleteAValue(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	value := []byte{0, 1, 2, 0xff}
	status, body := do(t, srv, http.MethodPut, nsPath+"/values/greeting", value)
	if e := decode(t, body); status != 200 || !e.Success || string(e.Result) != "{}" || e.Errors == nil {
		t.Fatalf("put: %d %s", status, body)
	}
	status, body = do(t, srv, http.MethodGet, nsPath+"/values/greeting", nil)
	if status != 200 || !bytes.Equal(body, value) {
		t.Fatalf("get: %d %q", status, body)
	}
	status, body = do(t, srv, http.MethodDelete, nsPath+"/values/greeting", nil)
	if e := decode(t, body); status != 200 || !e.Success {
		t.Fatalf("delete: %d %s", status, body)
	}
	status, body = do(t, srv, http.MethodGet, nsPath+"/values/greeting", nil)
	if e := decode(t, body); status != 404 || e.Success || e.Errors[0].Code != 10009 {
		t.Fatalf("get after delete: %d %s", status, body)
	}
	// Deleting what isn't there succeeds, as in Workers KV.
	if status, body := do(t, srv, http.MethodDelete, nsPath+"/values/greeting", nil); status != 200 {
		t.Errorf("second delete: %d %s", status, body)
	}
}

func TestKeysWithSlashesAndEscapesReachTheSameKey(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	do(t, srv, http.MethodPut, nsPath+"/values/"+url.PathEscape("a/b c?"), []byte("1"))
	if status, body := do(t, srv, http.MethodGet, nsPath+"/values/a%2Fb%20c%3F", nil); status != 200 || string(body) != "1" {
		t.Errorf("escaped slash: %d %q", status, body)
	}
	if status, body := do(t, srv, http.MethodGet, nsPath+"/values/a/b%20c%3F", nil); status != 200 || string(body) != "1" {
		t.Errorf("literal slash: %d %q", status, body)
	}
	if status, _ := do(t, srv, http.MethodPut, nsPath+"/values/"+strings.Repeat("k", maxKeyLen+1), []byte("1")); status != 400 {
		t.Errorf("a key past 512 bytes: %d, want 400", status)
	}
}

func TestExpirationAndTTLHideExpiredValues(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	now := time.Now().Unix()
	do(t, srv, http.MethodPut, nsPath+"/values/old?expiration="+strconv.FormatInt(now-1, 10), []byte("x"))
	do(t, srv, http.MethodPut, nsPath+"/values/ttl?expiration_ttl=3600", []byte("y"))
	do(t, srv, http.MethodPut, nsPath+"/values/gone?expiration_ttl=0", []byte("z"))
	if status, body := do(t, srv, http.MethodGet, nsPath+"/values/old", nil); status != 404 {
		t.Errorf("an expired value: %d %q", status, body)
	}
	if status, body := do(t, srv, http.MethodGet, nsPath+"/values/gone", nil); status != 404 {
		t.Errorf("a value with TTL 0: %d %q", status, body)
	}
	status, body := do(t, srv, http.MethodGet, nsPath+"/keys", nil)
	e := decode(t, body)
	var keys []keyInfo
	json.Unmarshal(e.Result, &keys)
	if status != 200 || len(keys) != 1 || keys[0].Name != "ttl" || keys[0].Expiration < now+3600 || keys[0].Expiration > now+3700 {
		t.Errorf("listing: %d %s", status, body)
	}
	for _, q := range []string{"expiration=soon", "expiration_ttl=-1", "expiration=1&expiration_ttl=x"} {
		if status, _ := do(t, srv, http.MethodPut, nsPath+"/values/k?"+q, []byte("v")); status != 400 {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
}

func TestListingPagesWithCursorLimitAndPrefix(t *testing.T) {
	srv, ns := apiServer(t, apiToken)
	c := connect(t, ns, pgx.QueryExecModeCacheStatement)
	// Written over SQL, listed over HTTP: the same namespace.
	if _, err := c.Exec(testContext(t), `INSERT INTO kv (key, value, metadata, expiration) VALUES
		('user:1', 'a', '{"n":1}', NULL), ('user:2', 'b', NULL, 4102444800), ('user:3', 'c', NULL, NULL), ('other', 'd', NULL, NULL)`); err != nil {
		t.Fatal(err)
	}
	var names []string
	cursor := ""
	for page := 0; page < 5; page++ {
		status, body := do(t, srv, http.MethodGet, nsPath+"/keys?prefix=user:&limit=2&cursor="+url.QueryEscape(cursor), nil)
		e := decode(t, body)
		if status != 200 || !e.Success {
			t.Fatalf("list: %d %s", status, body)
		}
		var keys []keyInfo
		if err := json.Unmarshal(e.Result, &keys); err != nil {
			t.Fatal(err)
		}
		if e.ResultInfo.Count != len(keys) {
			t.Errorf("count %d for %d keys", e.ResultInfo.Count, len(keys))
		}
		if page == 0 && !strings.Contains(string(body), `{"name":"user:1","metadata":{"n":1}},{"name":"user:2","expiration":4102444800}`) {
			t.Errorf("first page: %s", body)
		}
		for _, k := range keys {
			names = append(names, k.Name)
		}
		if cursor = e.ResultInfo.Cursor; cursor == "" {
			break
		}
	}
	if fmt.Sprint(names) != "[user:1 user:2 user:3]" {
		t.Errorf("listed %v", names)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=!!"} {
		if status, _ := do(t, srv, http.MethodGet, nsPath+"/keys?"+q, nil); status != 400 {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
}

func TestTheRESTAPINeedsTheBearerToken(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	for _, auth := range []string{"", "Bearer nope", "Basic " + apiToken, "Bearer " + apiToken + " x"} {
		status, body := doAuth(t, srv, http.MethodGet, nsPath+"/keys", nil, auth)
		if e := decode(t, body); status != 401 || e.Success || e.Errors[0].Code != 10000 {
			t.Errorf("Authorization %q: %d %s", auth, status, body)
		}
	}
	// Nor does a wrong token learn which namespaces exist.
	if status, _ := doAuth(t, srv, http.MethodGet, "/accounts/a/storage/kv/namespaces/other/keys", nil, "Bearer nope"); status != 401 {
		t.Errorf("an unknown namespace with a wrong token: %d, want 401", status)
	}
	if status, body := do(t, srv, http.MethodGet, "/accounts/a/storage/kv/namespaces/other/keys", nil); status != 404 || decode(t, body).Errors[0].Code != 10013 {
		t.Errorf("an unknown namespace: %d %s", status, body)
	}
	if status, _ := do(t, srv, http.MethodPost, nsPath+"/values/k", nil); status != 404 {
		t.Errorf("POST: %d, want 404", status)
	}
}

func TestAnEmptyTokenDisablesTheRESTAPI(t *testing.T) {
	srv, _ := apiServer(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		status, body := doAuth(t, srv, http.MethodGet, nsPath+"/keys", nil, auth)
		if e := decode(t, body); status != 403 || !strings.Contains(e.Errors[0].Message, "disabled") {
			t.Errorf("Authorization %q: %d %s", auth, status, body)
		}
	}
}

func TestAValueOver25MiBIsRefused(t *testing.T) {
	srv, _ := apiServer(t, apiToken)
	status, body := do(t, srv, http.MethodPut, nsPath+"/values/big", make([]byte, maxValueLen+1))
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("%d %s", status, body)
	}
	if status, _ := do(t, srv, http.MethodGet, nsPath+"/values/big", nil); status != 404 {
		t.Errorf("the refused value was stored: %d", status)
	}
}

package kv

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// The Workers KV REST API, as Cloudflare serves it:
//
//	GET    /accounts/{account}/storage/kv/namespaces/{ns}/values/{key}   the value, as bytes
//	PUT    /accounts/{account}/storage/kv/namespaces/{ns}/values/{key}?expiration=&expiration_ttl=
//	       body: the value
//	DELETE /accounts/{account}/storage/kv/namespaces/{ns}/values/{key}
//	GET    /accounts/{account}/storage/kv/namespaces/{ns}/keys?prefix=&cursor=&limit=
//	       {"result": [{"name", "expiration", "metadata"}], "result_info": {"count", "cursor"},
//	        "success": true, "errors": [], "messages": []}
//
// Every request carries "Authorization: Bearer TOKEN". The account segment is accepted whatever
// it is; namespaces are found by name (Cloudflare addresses them by ID; here the configured name
// stands for it). A key in the path is URL-encoded; "/" in a key may be written as is.

// Error codes in the errors array. 10000, 10009 and 7003 are Cloudflare's; it documents no
// fixed code for the others, which are this API's own.
const (
	apiCodeNoKey       = 10009 // key not found
	apiCodeBadRequest  = 10001 // a parameter or body the API refuses
	apiCodeInternal    = 10002 // storage failed, or the namespace is closing
	apiCodeNoNamespace = 10013 // no namespace of that name
)

// Listing limits: Workers KV lists at most 1000 keys per page, and 1000 by default.
const maxListLimit = 1000

// NewHTTPAPI returns the handler of the Workers KV REST API over namespaces, by name. Every
// request must carry "Authorization: Bearer token"; with an empty token the API is disabled and
// refuses every request with 403.
//
// The handler's patterns hold the whole path, so it can be mounted on a shared mux under
// "/accounts/{account}/storage/kv/" as it is.
func NewHTTPAPI(namespaces map[string]*Namespace, token string) http.Handler {
	api := &httpAPI{namespaces: namespaces}
	mux := http.NewServeMux()
	const ns = "/accounts/{account}/storage/kv/namespaces/{ns}"
	mux.HandleFunc("GET "+ns+"/values/{key...}", api.getValue)
	mux.HandleFunc("PUT "+ns+"/values/{key...}", api.putValue)
	mux.HandleFunc("DELETE "+ns+"/values/{key...}", api.deleteValue)
	mux.HandleFunc("GET "+ns+"/keys", api.listKeys)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		cfapi.WriteError(w, http.StatusNotFound, cfapi.CodeNoRoute, "No route for the URI")
	})
	return cfapi.Authenticate(token, "KV", mux)
}

type httpAPI struct {
	namespaces map[string]*Namespace
}

// namespace finds the request's namespace and counts the request in, so that Close waits for
// it; done must be called when ok.
func (api *httpAPI) namespace(w http.ResponseWriter, r *http.Request) (ns *Namespace, done func(), ok bool) {
	name := r.PathValue("ns")
	ns, found := api.namespaces[name]
	if !found {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoNamespace, "namespace "+strconv.Quote(name)+" not found")
		return nil, nil, false
	}
	if !ns.enter() {
		cfapi.WriteError(w, http.StatusServiceUnavailable, apiCodeInternal, "the namespace is closing")
		return nil, nil, false
	}
	return ns, ns.wg.Done, true
}

// key reads and checks the request's key.
func key(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.PathValue("key")
	var msg string
	switch {
	case k == "":
		msg = "a key is required"
	case k == "." || k == "..":
		msg = `keys "." and ".." are not allowed`
	case len(k) > maxKeyLen:
		msg = "key is longer than " + strconv.Itoa(maxKeyLen) + " bytes"
	default:
		return k, true
	}
	cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
	return "", false
}

func (api *httpAPI) getValue(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	ns, done, ok := api.namespace(w, r)
	if !ok {
		return
	}
	defer done()
	e, found, err := ns.get(r.Context(), k, true, time.Now().Unix())
	if err != nil {
		writeStorageError(w, err)
		return
	}
	if !found {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoKey, "get: 'key not found'")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(e.value)))
	w.WriteHeader(http.StatusOK)
	w.Write(e.value)
}

func (api *httpAPI) putValue(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	e := entry{key: k}
	q := r.URL.Query()
	exp, ttl := q.Get("expiration"), q.Get("expiration_ttl")
	now := time.Now().Unix()
	switch {
	case exp != "" && ttl != "":
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "give expiration or expiration_ttl, not both")
		return
	case exp != "":
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "expiration must be unix seconds")
			return
		}
		e.expiration, e.expires = n, true
	case ttl != "":
		n, err := strconv.ParseInt(ttl, 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "expiration_ttl must be a number of seconds")
			return
		}
		e.expiration, e.expires = now+n, true
	}
	ns, done, ok := api.namespace(w, r)
	if !ok {
		return
	}
	defer done()
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueLen))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			cfapi.WriteError(w, http.StatusRequestEntityTooLarge, apiCodeBadRequest, "the value is larger than 25 MiB")
			return
		}
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "could not read the request body")
		return
	}
	e.value = value
	if err := ns.putAll(r.Context(), []entry{e}); err != nil {
		writeStorageError(w, err)
		return
	}
	writeOK(w, []byte(`{}`))
}

func (api *httpAPI) deleteValue(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	ns, done, ok := api.namespace(w, r)
	if !ok {
		return
	}
	defer done()
	// Deleting a key that isn't there succeeds, as in Workers KV.
	if _, err := ns.delete(r.Context(), k, time.Now().Unix()); err != nil {
		writeStorageError(w, err)
		return
	}
	writeOK(w, []byte(`{}`))
}

// keyInfo is one key in a listing.
type keyInfo struct {
	Name       string          `json:"name"`
	Expiration int64           `json:"expiration,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// listResponse is a page of keys in Cloudflare's envelope.
type listResponse struct {
	Result     []keyInfo `json:"result"`
	ResultInfo struct {
		Count  int    `json:"count"`
		Cursor string `json:"cursor"`
	} `json:"result_info"`
	Success  bool  `json:"success"`
	Errors   []any `json:"errors"`
	Messages []any `json:"messages"`
}

func (api *httpAPI) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l := listing{prefix: q.Get("prefix"), limit: maxListLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "limit must be between 1 and 1000")
			return
		}
		l.limit = n
	}
	if c := q.Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "invalid cursor")
			return
		}
		l.after, l.hasAfter = string(after), true
	}
	ns, done, ok := api.namespace(w, r)
	if !ok {
		return
	}
	defer done()
	page, more, err := ns.list(r.Context(), l, time.Now().Unix())
	if err != nil {
		writeStorageError(w, err)
		return
	}
	keys := make([]keyInfo, len(page))
	for i, e := range page {
		keys[i] = keyInfo{Name: e.key, Metadata: e.metadata}
		if e.expires {
			keys[i].Expiration = e.expiration
		}
	}
	// The cursor is the last key listed, opaque to the client as Cloudflare's is; "" when the
	// listing is complete.
	cursor := ""
	if more && len(page) > 0 {
		cursor = base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1].key))
	}
	resp := listResponse{Result: keys, Success: true, Errors: []any{}, Messages: []any{}}
	resp.ResultInfo.Count, resp.ResultInfo.Cursor = len(keys), cursor
	body, err := json.Marshal(resp)
	if err != nil {
		// Metadata is checked JSON when it is stored; this is a file changed behind our back.
		cfapi.WriteError(w, http.StatusInternalServerError, apiCodeInternal, "a key's metadata is not valid JSON")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// writeOK answers with Cloudflare's success envelope around result.
func writeOK(w http.ResponseWriter, result []byte) {
	body := append(append([]byte(`{"result":`), result...), `,"success":true,"errors":[],"messages":[]}`...)
	writeJSON(w, http.StatusOK, body)
}

// writeStorageError reports a failure of the namespace's storage without its internal text.
func writeStorageError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	msg := "the namespace's storage failed"
	if pe := toPG(err); pe.code == codeAdminShutdown {
		status, msg = http.StatusServiceUnavailable, "the namespace is closing"
	}
	cfapi.WriteError(w, status, apiCodeInternal, msg)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

package kv

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// The Workers KV REST API, as Cloudflare serves it
// (https://developers.cloudflare.com/api/resources/kv/):
//
//	GET    /accounts/{account}/storage/kv/namespaces?page=&per_page=&order=&direction=  list
//	POST   /accounts/{account}/storage/kv/namespaces {"title"}          create
//	GET    /accounts/{account}/storage/kv/namespaces/{ns}               get
//	PUT    /accounts/{account}/storage/kv/namespaces/{ns} {"title"}     rename
//	DELETE /accounts/{account}/storage/kv/namespaces/{ns}               delete
//	GET    .../{ns}/values/{key}       the value, as bytes (header "expiration" when it expires)
//	PUT    .../{ns}/values/{key}?expiration=&expiration_ttl=
//	       body: the value, or multipart/form-data with parts "value" and "metadata"
//	DELETE .../{ns}/values/{key}
//	GET    .../{ns}/metadata/{key}     the key's metadata, as JSON
//	GET    .../{ns}/keys?prefix=&cursor=&limit=
//	       {"result": [{"name", "expiration", "metadata"}], "result_info": {"count", "cursor"}}
//	PUT    .../{ns}/bulk               [{"key","value","base64","expiration","expiration_ttl","metadata"}]
//	POST   .../{ns}/bulk/get           {"keys": [...], "type": "text" | "json", "withMetadata"}
//	POST   .../{ns}/bulk/delete        ["key", ...]  (also DELETE .../{ns}/bulk, the older form)
//
// Every request carries "Authorization: Bearer TOKEN". The account segment is accepted whatever
// it is. A namespace is addressed by its ID, as in Cloudflare's API, or by its title (see
// Catalog). A key in the path is URL-encoded; "/" in a key may be written as is.

// Error codes in the errors array: 10000, 10009, 10013 and 10014 are Cloudflare's; it documents
// no fixed code for the others, which are this API's own.
const (
	apiCodeNoKey       = 10009 // key not found
	apiCodeBadRequest  = 10001 // a parameter or body the API refuses
	apiCodeInternal    = 10002 // storage failed, or the namespace is closing
	apiCodeNoNamespace = 10013 // no namespace of that ID or title
	apiCodeTitleTaken  = 10014 // a namespace has that title already
)

// Listing limits: Workers KV lists at most 1000 keys per page, and 1000 by default.
const maxListLimit = 1000

// Bulk limits, Workers KV's: 10,000 pairs per write or delete, 100 keys per read; a bulk body
// is at most 100 MiB.
const (
	maxBulkWrite = 10000
	maxBulkGet   = 100
	maxBulkBody  = 100 << 20
)

// HTTPConfig configures NewHTTPAPI.
type HTTPConfig struct {
	// Catalog holds the namespaces served.
	Catalog *Catalog
	// Token is the bearer token every request must carry; "" disables the API (403).
	Token string
}

// NewHTTPAPI returns the handler of the Workers KV REST API. Every request must carry
// "Authorization: Bearer token"; with an empty token the API is disabled and refuses every
// request with 403.
//
// The handler's patterns hold the whole path, so it can be mounted on a shared mux under
// "/accounts/{account}/storage/kv/" as it is.
func NewHTTPAPI(cfg HTTPConfig) http.Handler {
	api := &httpAPI{catalog: cfg.Catalog}
	mux := http.NewServeMux()
	const all = "/accounts/{account}/storage/kv/namespaces"
	const ns = all + "/{ns}"
	mux.HandleFunc("GET "+all, api.listNamespaces)
	mux.HandleFunc("POST "+all, api.createNamespace)
	mux.HandleFunc("GET "+ns, api.getNamespace)
	mux.HandleFunc("PUT "+ns, api.renameNamespace)
	mux.HandleFunc("DELETE "+ns, api.deleteNamespace)
	mux.HandleFunc("GET "+ns+"/values/{key...}", api.getValue)
	mux.HandleFunc("PUT "+ns+"/values/{key...}", api.putValue)
	mux.HandleFunc("DELETE "+ns+"/values/{key...}", api.deleteValue)
	mux.HandleFunc("GET "+ns+"/metadata/{key...}", api.getMetadata)
	mux.HandleFunc("GET "+ns+"/keys", api.listKeys)
	mux.HandleFunc("PUT "+ns+"/bulk", api.bulkPut)
	mux.HandleFunc("POST "+ns+"/bulk/get", api.bulkGet)
	mux.HandleFunc("POST "+ns+"/bulk/delete", api.bulkDelete)
	mux.HandleFunc("DELETE "+ns+"/bulk", api.bulkDelete)
	mux.HandleFunc("/", cfapi.NoRoute)
	return cfapi.Authenticate(cfg.Token, "KV", mux)
}

type httpAPI struct {
	catalog *Catalog
}

// namespace finds the request's namespace and counts the request in, so that Close waits for
// it; done must be called when ok.
func (api *httpAPI) namespace(w http.ResponseWriter, r *http.Request) (ns *Namespace, done func(), ok bool) {
	id := r.PathValue("ns")
	e, found := api.catalog.lookup(id)
	if !found {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoNamespace, "namespace "+strconv.Quote(id)+" not found")
		return nil, nil, false
	}
	if !e.ns.enter() {
		cfapi.WriteError(w, http.StatusServiceUnavailable, apiCodeInternal, "the namespace is closing")
		return nil, nil, false
	}
	return e.ns, e.ns.wg.Done, true
}

// checkHTTPKey checks a key named in a request; "" when it is fine.
func checkHTTPKey(k string) string {
	switch {
	case k == "":
		return "a key is required"
	case k == "." || k == "..":
		return `keys "." and ".." are not allowed`
	case len(k) > maxKeyLen:
		return "key is longer than " + strconv.Itoa(maxKeyLen) + " bytes"
	}
	return ""
}

// key reads and checks the request's key.
func key(w http.ResponseWriter, r *http.Request) (string, bool) {
	k := r.PathValue("key")
	if msg := checkHTTPKey(k); msg != "" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
		return "", false
	}
	return k, true
}

// decodeJSON reads one JSON value of at most limit bytes into v, or answers 400/413.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any, shape string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			cfapi.WriteError(w, http.StatusRequestEntityTooLarge, apiCodeBadRequest, "the request body is larger than "+strconv.FormatInt(limit>>20, 10)+" MiB")
			return false
		}
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "the request body must be JSON: "+shape)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "the request body must hold one JSON value")
		return false
	}
	return true
}

// writeOK answers with Cloudflare's success envelope around result.
func writeOK(w http.ResponseWriter, result []byte) { cfapi.WriteOK(w, result) }

// writeResult answers with the success envelope around v, as JSON.
func writeResult(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Metadata is checked JSON when it is stored; this is a file changed behind our back.
		cfapi.WriteError(w, http.StatusInternalServerError, apiCodeInternal, "a key's metadata is not valid JSON")
		return
	}
	writeOK(w, b)
}

// writeStorageError reports a failure of the namespace's storage without its internal text.
func writeStorageError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	msg := "the namespace's storage failed"
	if pe := toPG(err); pe.Code == codeAdminShutdown {
		status, msg = http.StatusServiceUnavailable, "the namespace is closing"
	}
	cfapi.WriteError(w, status, apiCodeInternal, msg)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) { cfapi.WriteJSON(w, status, body) }

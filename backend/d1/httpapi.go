package d1

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// D1's REST API, as Cloudflare serves it (https://developers.cloudflare.com/api/resources/d1/):
//
//	GET    /accounts/{account}/d1/database?name=&page=&per_page=   list
//	POST   /accounts/{account}/d1/database {"name"}                create
//	GET    /accounts/{account}/d1/database/{id}                    get
//	PUT    /accounts/{account}/d1/database/{id}                    update (read_replication)
//	PATCH  /accounts/{account}/d1/database/{id}                    edit (read_replication)
//	DELETE /accounts/{account}/d1/database/{id}                    delete
//	POST   /accounts/{account}/d1/database/{id}/query              {"sql","params"} or {"batch":[...]}
//	POST   /accounts/{account}/d1/database/{id}/raw                the same, rows as arrays
//	POST   /accounts/{account}/d1/database/{id}/export             an SQL dump (transfer.go)
//	POST   /accounts/{account}/d1/database/{id}/import             init, ingest, poll (transfer.go)
//	*      /accounts/{account}/d1/database/{id}/time_travel/...    refused: no bookmarks here
//
//	200 {"result": [{"results": [{"id": 42, ...}], "success": true,
//	                 "meta": {"changes", "duration", "last_row_id", "rows_read", "rows_written", ...}}, ...],
//	     "success": true, "errors": [], "messages": []}
//	400 {"result": null, "success": false, "errors": [{"code": 7500, "message": "no such table: t"}], "messages": []}
//
// The account segment is accepted whatever it is: one process serves one account. A database is
// addressed by its UUID, as in Cloudflare's API, or by its name (see Catalog).

// maxQueryBody bounds a request body.
const maxQueryBody = 10 << 20

// Error codes in the errors array. 10000, 7003 and 7500 are the codes Cloudflare's API answers
// these cases with; 7400, 7404 and 7409 are this API's own, in D1's range.
const (
	apiCodeQuery      = 7500 // the SQL failed
	apiCodeBadRequest = 7400 // the body is not a query
	apiCodeNoDatabase = 7404 // no database of that name
	apiCodeConflict   = 7409 // the database can't be created or deleted as asked
)

// HTTPConfig configures NewHTTPAPI.
type HTTPConfig struct {
	// Catalog holds the databases served.
	Catalog *Catalog
	// Token is the bearer token every request must carry; "" disables the API (403).
	Token string
	// Invalidate, when set, is called with a database's name after a request may have written
	// to it (or deleted it) and before the answer goes out: the edge drops its cached reads,
	// so that a client that reads after the answer never sees what was there before.
	Invalidate func(name string)
}

// NewHTTPAPI returns the handler of D1's REST API. Every request must carry "Authorization:
// Bearer token", except the download of an export and the upload of an import, whose URLs are
// unguessable and short-lived, like the presigned URLs Cloudflare answers with.
//
// The handler's patterns hold the whole path, so it can be mounted on a shared mux under
// "/accounts/{account}/d1/" and TransferPrefix as it is.
func NewHTTPAPI(cfg HTTPConfig) http.Handler {
	api := &httpAPI{cfg: cfg, transfers: newTransfers()}
	mux := http.NewServeMux()
	const db = "/accounts/{account}/d1/database/{id}"
	mux.HandleFunc("GET /accounts/{account}/d1/database", api.list)
	mux.HandleFunc("POST /accounts/{account}/d1/database", api.create)
	mux.HandleFunc("GET "+db, api.get)
	mux.HandleFunc("PUT "+db, api.update)
	mux.HandleFunc("PATCH "+db, api.update)
	mux.HandleFunc("DELETE "+db, api.delete)
	mux.HandleFunc(db+"/query", func(w http.ResponseWriter, r *http.Request) { api.query(w, r, formatObjects) })
	mux.HandleFunc(db+"/raw", func(w http.ResponseWriter, r *http.Request) { api.query(w, r, formatRaw) })
	mux.HandleFunc("POST "+db+"/export", api.export)
	mux.HandleFunc("POST "+db+"/import", api.importSQL)
	mux.HandleFunc(db+"/time_travel/{op...}", func(w http.ResponseWriter, r *http.Request) {
		cfapi.WriteError(w, http.StatusNotImplemented, cfapi.CodeUnsupported,
			"time travel needs Cloudflare's storage, which keeps every change for 30 days; a local D1 database keeps only its current state")
	})
	mux.HandleFunc("/", cfapi.NoRoute)
	authed := cfapi.Authenticate(cfg.Token, "D1", mux)
	outer := http.NewServeMux()
	outer.HandleFunc("GET "+TransferPrefix+"{name}", api.download)
	outer.HandleFunc("PUT "+TransferPrefix+"{name}", api.upload)
	outer.Handle("/", authed)
	return outer
}

type httpAPI struct {
	cfg       HTTPConfig
	transfers *transfers
}

// database finds the request's database, or answers 404.
func (api *httpAPI) database(w http.ResponseWriter, r *http.Request) (*catalogEntry, bool) {
	id := r.PathValue("id")
	e, ok := api.cfg.Catalog.lookup(id)
	if !ok {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoDatabase, "The database "+strconv.Quote(id)+" could not be found")
	}
	return e, ok
}

// invalidate tells the edge that name may have changed.
func (api *httpAPI) invalidate(name string) {
	if api.cfg.Invalidate != nil {
		api.cfg.Invalidate(name)
	}
}

// queryRequest is the body of a query: one "sql" with its "params", or a "batch" of them.
type queryRequest struct {
	SQL    string            `json:"sql"`
	Params []json.RawMessage `json:"params"`
	Batch  []struct {
		SQL    string            `json:"sql"`
		Params []json.RawMessage `json:"params"`
	} `json:"batch"`
}

// decodeBody reads one JSON object of at most maxQueryBody bytes into v, or answers 400/413.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxQueryBody))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			cfapi.WriteError(w, http.StatusRequestEntityTooLarge, apiCodeBadRequest, "the request body is larger than 10 MiB")
			return false
		}
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "the request body must be JSON: "+shape)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "the request body must hold one JSON object")
		return false
	}
	return true
}

// queries turns a request into the queries to run, or a message saying why it can't.
func (req *queryRequest) queries() ([]query, string) {
	if len(req.Batch) > 0 {
		if req.SQL != "" {
			return nil, "give sql or batch, not both"
		}
		qs := make([]query, len(req.Batch))
		for i, b := range req.Batch {
			if strings.TrimSpace(b.SQL) == "" {
				return nil, "batch[" + strconv.Itoa(i) + "].sql is required"
			}
			params, msg := decodeParams(b.Params, "batch["+strconv.Itoa(i)+"].params")
			if msg != "" {
				return nil, msg
			}
			qs[i] = query{sql: b.SQL, params: params}
		}
		return qs, ""
	}
	if strings.TrimSpace(req.SQL) == "" {
		return nil, "sql is required"
	}
	params, msg := decodeParams(req.Params, "params")
	if msg != "" {
		return nil, msg
	}
	return []query{{sql: req.SQL, params: params}}, ""
}

func decodeParams(raw []json.RawMessage, what string) ([]any, string) {
	params := make([]any, len(raw))
	for i, r := range raw {
		v, err := decodeParam(r)
		if err != nil {
			return nil, what + "[" + strconv.Itoa(i) + "]: " + err.Error()
		}
		params[i] = v
	}
	return params, ""
}

func (api *httpAPI) query(w http.ResponseWriter, r *http.Request, format resultFormat) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		cfapi.WriteError(w, http.StatusMethodNotAllowed, cfapi.CodeNoRoute, "use POST to run a query")
		return
	}
	e, ok := api.database(w, r)
	if !ok {
		return
	}
	var req queryRequest
	if !decodeBody(w, r, &req, `{"sql": "...", "params": [...]} or {"batch": [{"sql": "...", "params": [...]}, ...]}`) {
		return
	}
	qs, msg := req.queries()
	if msg != "" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
		return
	}
	out := append(make([]byte, 0, 512), `{"result":[`...)
	out, wrote, err := e.db.runBatch(r.Context(), out, qs, format)
	if wrote {
		api.invalidate(e.Name)
	}
	if err != nil {
		status, msg := batchFailure(err)
		cfapi.WriteError(w, status, apiCodeQuery, msg)
		return
	}
	out = append(out, `],"success":true,"errors":[],"messages":[]}`...)
	cfapi.WriteJSON(w, http.StatusOK, out)
}

// batchFailure is the status and message a failed batch is reported with. SQLite's messages name
// tables, columns and constraints and hold nothing secret, so they pass on as D1 passes them;
// anything else is reported without its internal text.
func batchFailure(err error) (int, string) {
	var be *batchError
	var se *sqliteError
	switch {
	case errors.As(err, &be):
		return http.StatusBadRequest, be.msg
	case errors.Is(err, errBatchTooLarge):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable, "the database is closing"
	case errors.As(err, &se):
		if se.code&0xff == sqlite3.SQLITE_INTERRUPT {
			return http.StatusServiceUnavailable, "the query was interrupted"
		}
		return http.StatusBadRequest, se.msg
	}
	return http.StatusInternalServerError, "internal error in the d1 backend"
}

// decodeParam turns a JSON parameter into a value to bind: null, a boolean (bound as 1 or 0, as
// D1 binds it), a number (an integer when it is one, else a REAL), a string, or an array of byte
// values (a BLOB).
func decodeParam(raw json.RawMessage) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, errors.New("not a JSON value")
		}
		return b, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("not a JSON string")
		}
		return s, nil
	case '[':
		var bs []int
		if err := json.Unmarshal(raw, &bs); err != nil {
			return nil, errors.New("an array must hold byte values (0-255), for a BLOB")
		}
		blob := make([]byte, len(bs))
		for i, b := range bs {
			if b < 0 || b > 255 {
				return nil, errors.New("an array must hold byte values (0-255), for a BLOB")
			}
			blob[i] = byte(b)
		}
		return blob, nil
	case '{':
		return nil, errors.New("objects are not supported: pass JSON text as a string")
	}
	s := string(raw)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !json.Valid(raw) {
		return nil, errors.New("not a JSON value")
	}
	return f, nil
}

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

// D1's HTTP query API, as Cloudflare serves it:
//
//	POST /accounts/{account}/d1/database/{name}/query
//	Authorization: Bearer TOKEN
//	{"sql": "SELECT * FROM t WHERE id = ?1; ...", "params": [42]}
//
//	200 {"result": [{"results": [{"id": 42, ...}], "success": true,
//	                 "meta": {"changes", "duration", "last_row_id", "rows_read", "rows_written"}}, ...],
//	     "success": true, "errors": [], "messages": []}
//	400 {"result": null, "success": false, "errors": [{"code": 7500, "message": "no such table: t"}], "messages": []}
//
// The account segment is accepted whatever it is: one process serves one account. Databases are
// found by name (D1 addresses them by UUID; here the configured name stands for it).

// maxQueryBody bounds a request body.
const maxQueryBody = 10 << 20

// Error codes in the errors array. 10000, 7003 and 7500 are the codes Cloudflare's API answers
// these cases with; 7400 and 7404 are this API's own, in D1's range.
const (
	apiCodeQuery      = 7500 // the SQL failed
	apiCodeBadRequest = 7400 // the body is not a query
	apiCodeNoDatabase = 7404 // no database of that name
)

// NewHTTPAPI returns the handler of D1's HTTP query API over dbs, by name. Every request must
// carry "Authorization: Bearer token"; with an empty token the API is disabled and refuses every
// request with 403.
//
// The handler's patterns hold the whole path, so it can be mounted on a shared mux under
// "/accounts/{account}/d1/" as it is.
func NewHTTPAPI(dbs map[string]*DB, token string) http.Handler {
	api := &httpAPI{dbs: dbs}
	mux := http.NewServeMux()
	mux.HandleFunc("/accounts/{account}/d1/database/{name}/query", api.query)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		cfapi.WriteError(w, http.StatusNotFound, cfapi.CodeNoRoute, "No route for the URI")
	})
	return cfapi.Authenticate(token, "D1", mux)
}

type httpAPI struct {
	dbs map[string]*DB
}

// queryRequest is the body of a query.
type queryRequest struct {
	SQL    string            `json:"sql"`
	Params []json.RawMessage `json:"params"`
}

func (api *httpAPI) query(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		cfapi.WriteError(w, http.StatusMethodNotAllowed, cfapi.CodeNoRoute, "use POST to run a query")
		return
	}
	name := r.PathValue("name")
	db, ok := api.dbs[name]
	if !ok {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoDatabase, "The database "+strconv.Quote(name)+" could not be found")
		return
	}
	var req queryRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxQueryBody))
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			cfapi.WriteError(w, http.StatusRequestEntityTooLarge, apiCodeBadRequest, "the request body is larger than 10 MiB")
			return
		}
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "the request body must be JSON: {\"sql\": \"...\", \"params\": [...]}")
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "the request body must hold one JSON object")
		return
	}
	if strings.TrimSpace(req.SQL) == "" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "sql is required")
		return
	}
	params := make([]any, len(req.Params))
	for i, raw := range req.Params {
		v, err := decodeParam(raw)
		if err != nil {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "params["+strconv.Itoa(i)+"]: "+err.Error())
			return
		}
		params[i] = v
	}

	out := append(make([]byte, 0, 512), `{"result":[`...)
	out, err := db.runBatch(r.Context(), out, req.SQL, params)
	if err != nil {
		status, msg := batchFailure(err)
		cfapi.WriteError(w, status, apiCodeQuery, msg)
		return
	}
	out = append(out, `],"success":true,"errors":[],"messages":[]}`...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
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

package d1

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Export and import, as D1's REST API runs them, with this process standing in for the R2
// bucket that Cloudflare hands out presigned URLs to:
//
//	POST .../export {"output_format":"polling","dump_options":{...}}
//	     → {"status":"complete","result":{"filename","signed_url"}}   GET signed_url → the dump
//	POST .../import {"action":"init","etag":MD5}   → {"upload_url","filename"}
//	PUT  upload_url  (the SQL file)                → ETag: "MD5"
//	POST .../import {"action":"ingest","etag","filename"} → {"status":"complete","at_bookmark",
//	                                                         "result":{"num_queries","meta"}}
//	POST .../import {"action":"poll","current_bookmark"}  → the same, again
//
// The dump is made at once, so an export is complete on its first answer, and an import runs
// while ingest waits. Files are kept in memory, at most maxTransfers of at most maxTransfer
// bytes each, for transferTTL (Cloudflare's URLs last an hour); the URLs carry 128 random bits
// and need no token, as presigned URLs need none. A bookmark here names an import's result, not
// a point in time: there is no time travel to restore to.

// TransferPrefix is the path under which export downloads and import uploads are served.
const TransferPrefix = "/d1/transfer/"

const (
	maxTransfer  = 64 << 20
	maxTransfers = 8
	transferTTL  = time.Hour
)

// transfer is one file in flight, or an import's outcome.
type transfer struct {
	expires  time.Time
	data     []byte // an export's dump, or an import's upload once PUT
	etag     string // an import's expected MD5, hex
	upload   bool   // an import's slot: PUT fills it
	db       string // the database's UUID, for an import
	uploaded bool
	result   json.RawMessage // an import's answer, by bookmark
}

type transfers struct {
	mu sync.Mutex
	m  map[string]*transfer
}

func newTransfers() *transfers { return &transfers{m: map[string]*transfer{}} }

var errTooManyTransfers = errors.New("too many exports and imports in flight: try again in a while")

// add keeps t under a new random name with suffix.
func (ts *transfers) add(t *transfer, suffix string) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	name := hex.EncodeToString(b[:]) + suffix
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := time.Now()
	for k, v := range ts.m {
		if now.After(v.expires) {
			delete(ts.m, k)
		}
	}
	if len(ts.m) >= maxTransfers {
		return "", errTooManyTransfers
	}
	t.expires = now.Add(transferTTL)
	ts.m[name] = t
	return name, nil
}

func (ts *transfers) get(name string) *transfer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.m[name]
	if t == nil || time.Now().After(t.expires) {
		return nil
	}
	return t
}

// baseURL is where the client reached this API, for the URLs it is handed.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func (api *httpAPI) export(w http.ResponseWriter, r *http.Request) {
	e, ok := api.database(w, r)
	if !ok {
		return
	}
	var req struct {
		OutputFormat string      `json:"output_format"`
		DumpOptions  dumpOptions `json:"dump_options"`
	}
	if !decodeBody(w, r, &req, `{"output_format": "polling", "dump_options": {...}}`) {
		return
	}
	if req.OutputFormat != "polling" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, `output_format must be "polling"`)
		return
	}
	data, err := e.db.dump(r.Context(), req.DumpOptions)
	if errors.Is(err, errDumpTooLarge) {
		cfapi.WriteError(w, http.StatusRequestEntityTooLarge, apiCodeBadRequest, err.Error())
		return
	}
	if err != nil {
		status, msg := batchFailure(err)
		cfapi.WriteError(w, status, apiCodeQuery, msg)
		return
	}
	name, err := api.transfers.add(&transfer{data: data}, ".sql")
	if err != nil {
		cfapi.WriteError(w, http.StatusTooManyRequests, apiCodeConflict, err.Error())
		return
	}
	writeResult(w, map[string]any{
		"success": true, "type": "export", "status": "complete", "at_bookmark": "", "messages": []string{},
		"result": map[string]string{"filename": e.Name + "-" + name, "signed_url": baseURL(r) + TransferPrefix + name},
	})
}

func (api *httpAPI) download(w http.ResponseWriter, r *http.Request) {
	t := api.transfers.get(r.PathValue("name"))
	if t == nil || t.upload {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/sql")
	w.Header().Set("Content-Length", strconv.Itoa(len(t.data)))
	w.Write(t.data)
}

func (api *httpAPI) upload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	t := api.transfers.get(name)
	if t == nil || !t.upload {
		http.NotFound(w, r)
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTransfer))
	if err != nil {
		http.Error(w, "the upload is larger than 64 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	sum := md5.Sum(data)
	if hex.EncodeToString(sum[:]) != t.etag {
		http.Error(w, "the upload's MD5 is not the etag given to init", http.StatusBadRequest)
		return
	}
	api.transfers.mu.Lock()
	t.data, t.uploaded = data, true
	api.transfers.mu.Unlock()
	w.Header().Set("ETag", `"`+t.etag+`"`)
	w.WriteHeader(http.StatusOK)
}

// importRequest is the body of each step of an import.
type importRequest struct {
	Action          string `json:"action"`
	Etag            string `json:"etag"`
	Filename        string `json:"filename"`
	CurrentBookmark string `json:"current_bookmark"`
}

func (api *httpAPI) importSQL(w http.ResponseWriter, r *http.Request) {
	e, ok := api.database(w, r)
	if !ok {
		return
	}
	var req importRequest
	if !decodeBody(w, r, &req, `{"action": "init" | "ingest" | "poll", ...}`) {
		return
	}
	switch req.Action {
	case "init":
		if b, err := hex.DecodeString(req.Etag); err != nil || len(b) != md5.Size {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "etag must be the file's MD5, in hex")
			return
		}
		name, err := api.transfers.add(&transfer{upload: true, etag: req.Etag, db: e.UUID}, ".sql")
		if err != nil {
			cfapi.WriteError(w, http.StatusTooManyRequests, apiCodeConflict, err.Error())
			return
		}
		writeResult(w, map[string]any{"success": true, "filename": name, "upload_url": baseURL(r) + TransferPrefix + name})
	case "ingest":
		api.ingest(w, r, e, req)
	case "poll":
		var result json.RawMessage
		if t := api.transfers.get(req.CurrentBookmark); t != nil && t.db == e.UUID {
			api.transfers.mu.Lock()
			result = t.result
			api.transfers.mu.Unlock()
		}
		if result == nil {
			cfapi.WriteError(w, http.StatusNotFound, apiCodeNoDatabase, "no import with that bookmark")
			return
		}
		cfapi.WriteOK(w, result)
	default:
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, `action must be "init", "ingest" or "poll"`)
	}
}

func (api *httpAPI) ingest(w http.ResponseWriter, r *http.Request, e *catalogEntry, req importRequest) {
	t := api.transfers.get(req.Filename)
	api.transfers.mu.Lock()
	ready := t != nil && t.upload && t.uploaded && t.db == e.UUID && t.etag == req.Etag
	var data []byte
	if ready {
		data, t.data = t.data, nil // ingested once
		t.uploaded = false
	}
	api.transfers.mu.Unlock()
	if !ready {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "no uploaded file with that filename and etag: init, then PUT the file to upload_url")
		return
	}
	res, err := e.db.runScript(r.Context(), string(data))
	if err != nil {
		status, msg := batchFailure(err)
		cfapi.WriteError(w, status, apiCodeQuery, msg)
		return
	}
	api.invalidate(e.Name)
	bookmark, err := api.transfers.add(&transfer{db: e.UUID}, "")
	if err != nil {
		cfapi.WriteError(w, http.StatusTooManyRequests, apiCodeConflict, err.Error())
		return
	}
	answer, _ := json.Marshal(map[string]any{
		"success": true, "type": "import", "status": "complete", "at_bookmark": bookmark,
		"messages": []string{"Imported " + strconv.Itoa(res.NumQueries) + " statements"},
		"result":   map[string]any{"num_queries": res.NumQueries, "final_bookmark": bookmark, "meta": res.Meta},
	})
	api.transfers.mu.Lock()
	api.transfers.m[bookmark].result = answer
	api.transfers.mu.Unlock()
	cfapi.WriteOK(w, answer)
}

package d1

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Managing databases: list, get, create, update, delete, as D1's REST API shapes them.

// databaseInfo is a database as list answers it.
type databaseInfo struct {
	UUID         string    `json:"uuid"`
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	Version      string    `json:"version"`
	Jurisdiction *string   `json:"jurisdiction"`
}

// databaseDetails is a database as get, create and update answer it.
type databaseDetails struct {
	databaseInfo
	FileSize        int64 `json:"file_size"`
	NumTables       int64 `json:"num_tables"`
	ReadReplication struct {
		Mode string `json:"mode"`
	} `json:"read_replication"`
}

// version is D1's storage backend version, which every database here reports.
const version = "production"

func info(e catalogEntry) databaseInfo {
	return databaseInfo{UUID: e.UUID, Name: e.Name, CreatedAt: e.CreatedAt, Version: version}
}

// details reads a database's size and table count.
func (api *httpAPI) details(r *http.Request, e catalogEntry) databaseDetails {
	d := databaseDetails{databaseInfo: info(e)}
	d.ReadReplication.Mode = e.ReadReplication
	if fi, err := os.Stat(e.db.path); err == nil {
		d.FileSize = fi.Size()
	}
	if wal, err := os.Stat(e.db.path + "-wal"); err == nil {
		d.FileSize += wal.Size()
	}
	qs := []query{{sql: "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'"}}
	if out, _, err := e.db.runBatch(r.Context(), nil, qs, formatRaw); err == nil {
		var res struct {
			Results struct{ Rows [][]int64 } `json:"results"`
		}
		if json.Unmarshal(out, &res) == nil && len(res.Results.Rows) == 1 && len(res.Results.Rows[0]) == 1 {
			d.NumTables = res.Results.Rows[0][0]
		}
	}
	return d
}

func writeResult(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		cfapi.WriteError(w, http.StatusInternalServerError, apiCodeQuery, "internal error in the d1 backend")
		return
	}
	cfapi.WriteOK(w, b)
}

func (api *httpAPI) list(w http.ResponseWriter, r *http.Request) {
	page, perPage, msg := cfapi.Paging(r, 1000, 10000)
	if msg != "" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
		return
	}
	all := api.cfg.Catalog.list(r.URL.Query().Get("name"))
	items := make([]databaseInfo, 0, len(all))
	for _, e := range cfapi.Cut(all, page, perPage) {
		items = append(items, info(e))
	}
	cfapi.WritePage(w, items, page, perPage, len(all))
}

func (api *httpAPI) get(w http.ResponseWriter, r *http.Request) {
	e, ok := api.database(w, r)
	if !ok {
		return
	}
	writeResult(w, api.details(r, api.cfg.Catalog.snapshot(e)))
}

// createRequest is the body of a create. The location hint and jurisdiction are accepted and
// have no effect: the database lives where this process does.
type createRequest struct {
	Name                string `json:"name"`
	PrimaryLocationHint string `json:"primary_location_hint"`
	Jurisdiction        string `json:"jurisdiction"`
}

func (api *httpAPI) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decodeBody(w, r, &req, `{"name": "..."}`) {
		return
	}
	e, err := api.cfg.Catalog.create(req.Name)
	switch {
	case errors.Is(err, errBadName):
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, err.Error())
		return
	case errors.Is(err, errNameTaken), errors.Is(err, errNoCreate):
		cfapi.WriteError(w, http.StatusConflict, apiCodeConflict, err.Error())
		return
	case errors.Is(err, errStorage):
		cfapi.WriteError(w, http.StatusInternalServerError, apiCodeConflict, "the database could not be created: "+errStorage.Error())
		return
	case err != nil:
		// Attach's refusal, in words meant for the client (a name another database has).
		cfapi.WriteError(w, http.StatusConflict, apiCodeConflict, "the database could not be created: "+err.Error())
		return
	}
	writeResult(w, api.details(r, e))
}

// updateRequest is the body of an update or edit: the read replication mode, which is recorded
// and reported; there are no replicas here, every query is served by the primary.
type updateRequest struct {
	ReadReplication *struct {
		Mode string `json:"mode"`
	} `json:"read_replication"`
}

func (api *httpAPI) update(w http.ResponseWriter, r *http.Request) {
	e, ok := api.database(w, r)
	if !ok {
		return
	}
	var req updateRequest
	if !decodeBody(w, r, &req, `{"read_replication": {"mode": "auto" | "disabled"}}`) {
		return
	}
	cur := api.cfg.Catalog.snapshot(e)
	if req.ReadReplication == nil {
		if r.Method == http.MethodPut {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "read_replication is required")
			return
		}
	} else {
		mode := req.ReadReplication.Mode
		if mode != "auto" && mode != "disabled" {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, `read_replication.mode must be "auto" or "disabled", not `+strconv.Quote(mode))
			return
		}
		var err error
		if cur, err = api.cfg.Catalog.setReplication(e, mode); err != nil {
			cfapi.WriteError(w, http.StatusInternalServerError, apiCodeConflict, "the database's settings could not be saved")
			return
		}
	}
	writeResult(w, api.details(r, cur))
}

func (api *httpAPI) delete(w http.ResponseWriter, r *http.Request) {
	e, ok := api.database(w, r)
	if !ok {
		return
	}
	if err := api.cfg.Catalog.remove(e); err != nil {
		status, msg := http.StatusInternalServerError, errStorage.Error()
		if errors.Is(err, errConfigured) {
			status, msg = http.StatusConflict, err.Error()
		}
		cfapi.WriteError(w, status, apiCodeConflict, "the database could not be deleted: "+msg)
		return
	}
	api.invalidate(e.Name)
	cfapi.WriteOK(w, []byte("null"))
}

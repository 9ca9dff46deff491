package kv

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Managing namespaces: list, create, get, rename, delete, as Workers KV's REST API shapes them.

// namespaceInfo is a namespace as the API answers it. Keys in URLs are URL-decoded here, which
// is what supports_url_encoding says.
type namespaceInfo struct {
	ID                  string `json:"id"`
	Title               string `json:"title"`
	SupportsURLEncoding bool   `json:"supports_url_encoding"`
}

func nsInfo(e catalogEntry) namespaceInfo {
	return namespaceInfo{ID: e.ID, Title: e.Title, SupportsURLEncoding: true}
}

func (api *httpAPI) listNamespaces(w http.ResponseWriter, r *http.Request) {
	page, perPage, msg := cfapi.Paging(r, 20, 1000)
	q := r.URL.Query()
	order, dir := q.Get("order"), q.Get("direction")
	switch {
	case msg != "":
	case order != "" && order != "id" && order != "title":
		msg = `order must be "id" or "title"`
	case dir != "" && dir != "asc" && dir != "desc":
		msg = `direction must be "asc" or "desc"`
	}
	if msg != "" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
		return
	}
	all := api.catalog.list(order, dir == "desc")
	items := make([]namespaceInfo, 0, len(all))
	for _, e := range cfapi.Cut(all, page, perPage) {
		items = append(items, nsInfo(e))
	}
	cfapi.WritePage(w, items, page, perPage, len(all))
}

// titleRequest is the body of a create or rename.
type titleRequest struct {
	Title string `json:"title"`
}

// writeCatalogError answers a failed create, rename or delete.
func writeCatalogError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errTitleTaken):
		cfapi.WriteError(w, http.StatusConflict, apiCodeTitleTaken, err.Error())
	case errors.Is(err, errStorage):
		cfapi.WriteError(w, http.StatusInternalServerError, apiCodeInternal, errStorage.Error())
	case errors.Is(err, errNoCreate), errors.Is(err, errConfigured):
		cfapi.WriteError(w, http.StatusConflict, apiCodeBadRequest, err.Error())
	default:
		// validTitle's or Attach's refusal, in words meant for the client.
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, err.Error())
	}
}

func (api *httpAPI) createNamespace(w http.ResponseWriter, r *http.Request) {
	var req titleRequest
	if !decodeJSON(w, r, 1<<20, &req, `{"title": "..."}`) {
		return
	}
	e, err := api.catalog.create(req.Title)
	if err != nil {
		writeCatalogError(w, err)
		return
	}
	writeResult(w, nsInfo(e))
}

func (api *httpAPI) getNamespace(w http.ResponseWriter, r *http.Request) {
	e, ok := api.catalogEntry(w, r)
	if !ok {
		return
	}
	writeResult(w, nsInfo(api.catalog.snapshot(e)))
}

func (api *httpAPI) renameNamespace(w http.ResponseWriter, r *http.Request) {
	e, ok := api.catalogEntry(w, r)
	if !ok {
		return
	}
	var req titleRequest
	if !decodeJSON(w, r, 1<<20, &req, `{"title": "..."}`) {
		return
	}
	renamed, err := api.catalog.rename(e, req.Title)
	if err != nil {
		writeCatalogError(w, err)
		return
	}
	writeResult(w, nsInfo(renamed))
}

func (api *httpAPI) deleteNamespace(w http.ResponseWriter, r *http.Request) {
	e, ok := api.catalogEntry(w, r)
	if !ok {
		return
	}
	if err := api.catalog.remove(e); err != nil {
		writeCatalogError(w, err)
		return
	}
	writeOK(w, []byte(`{}`))
}

// catalogEntry finds the request's namespace in the catalog, or answers 404.
func (api *httpAPI) catalogEntry(w http.ResponseWriter, r *http.Request) (*catalogEntry, bool) {
	id := r.PathValue("ns")
	e, ok := api.catalog.lookup(id)
	if !ok {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoNamespace, "namespace "+strconv.Quote(id)+" not found")
	}
	return e, ok
}

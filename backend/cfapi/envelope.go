package cfapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// More error codes, as Cloudflare's v4 API numbers them.
const (
	CodeBadRequest  = 10001 // a parameter or body the API refuses
	CodeUnsupported = 10405 // an operation that needs Cloudflare's own infrastructure
)

// WriteOK answers 200 with the success envelope around result, a JSON value.
func WriteOK(w http.ResponseWriter, result []byte) {
	WriteOKInfo(w, result, nil)
}

// WriteOKInfo answers 200 with the success envelope around result and, when info is not nil,
// result_info (pagination: count, page, per_page, total_count; or a listing's cursor).
func WriteOKInfo(w http.ResponseWriter, result, info []byte) {
	body := make([]byte, 0, len(result)+len(info)+96)
	body = append(body, `{"result":`...)
	body = append(body, result...)
	if info != nil {
		body = append(body, `,"result_info":`...)
		body = append(body, info...)
	}
	body = append(body, `,"success":true,"errors":[],"messages":[]}`...)
	WriteJSON(w, http.StatusOK, body)
}

// WriteJSON answers with a JSON body.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// NoRoute answers 404 with Cloudflare's "No route for the URI" (7003).
func NoRoute(w http.ResponseWriter, r *http.Request) {
	WriteError(w, http.StatusNotFound, CodeNoRoute, "No route for the URI")
}

// PageInfo is result_info of a paged listing, as Cloudflare's V4 pagination reads it.
type PageInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
}

// Paging reads page (from 1) and per_page (from 1 to max, def when absent) from r's query.
func Paging(r *http.Request, def, max int) (page, perPage int, msg string) {
	q := r.URL.Query()
	page, perPage = 1, def
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, "page must be a whole number from 1"
		}
		page = n
	}
	if s := q.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > max {
			return 0, 0, "per_page must be between 1 and " + strconv.Itoa(max)
		}
		perPage = n
	}
	return page, perPage, ""
}

// WritePage answers one page of items (already cut from total) with its result_info.
func WritePage[T any](w http.ResponseWriter, items []T, page, perPage, total int) {
	if items == nil {
		items = []T{}
	}
	result, err := json.Marshal(items)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, CodeBadRequest, "internal error")
		return
	}
	info, _ := json.Marshal(PageInfo{Page: page, PerPage: perPage, Count: len(items), TotalCount: total})
	WriteOKInfo(w, result, info)
}

// Cut returns the page of items that page and perPage name.
func Cut[T any](items []T, page, perPage int) []T {
	if page < 1 || perPage < 1 || page-1 > len(items)/perPage {
		return nil // past the end, checked before multiplying so that it can't overflow
	}
	from := (page - 1) * perPage
	if from >= len(items) {
		return nil
	}
	return items[from:min(len(items), from+perPage)]
}

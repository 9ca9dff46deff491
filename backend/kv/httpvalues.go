package kv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Values, their metadata, and listings of keys.

func (api *httpAPI) getValue(w http.ResponseWriter, r *http.Request) {
	e, ok := api.stored(w, r, true, "get")
	if !ok {
		return
	}
	if e.expires {
		w.Header().Set("Expiration", strconv.FormatInt(e.expiration, 10))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(e.value)))
	w.WriteHeader(http.StatusOK)
	w.Write(e.value)
}

func (api *httpAPI) getMetadata(w http.ResponseWriter, r *http.Request) {
	e, ok := api.stored(w, r, false, "metadata")
	if !ok {
		return
	}
	if e.metadata == nil {
		writeOK(w, []byte("null"))
		return
	}
	writeOK(w, e.metadata)
}

// keyNamespace reads the request's key and finds its namespace, or answers 400 or 404; done
// ends the request's hold on the namespace.
func (api *httpAPI) keyNamespace(w http.ResponseWriter, r *http.Request) (k string, ns *Namespace, done func(), ok bool) {
	if k, ok = key(w, r); !ok {
		return "", nil, nil, false
	}
	ns, done, ok = api.namespace(w, r)
	return k, ns, done, ok
}

// stored reads the request's key, with its value or without, or answers the error; op names
// the read in a 404's message, as Workers KV words it.
func (api *httpAPI) stored(w http.ResponseWriter, r *http.Request, withValue bool, op string) (entry, bool) {
	k, ns, done, ok := api.keyNamespace(w, r)
	if !ok {
		return entry{}, false
	}
	defer done()
	e, found, err := ns.get(r.Context(), k, withValue, time.Now().Unix())
	if err != nil {
		writeStorageError(w, err)
		return entry{}, false
	}
	if !found {
		cfapi.WriteError(w, http.StatusNotFound, apiCodeNoKey, op+": 'key not found'")
		return entry{}, false
	}
	return e, true
}

// expiry reads when a put expires, from expiration (unix seconds) or expiration_ttl (seconds
// from now), as Workers KV does: when both are given, expiration_ttl wins.
func expiry(exp, ttl string, now int64) (expiration int64, expires bool, msg string) {
	switch {
	case ttl != "":
		n, err := strconv.ParseFloat(ttl, 64)
		if err != nil || n < 0 || n > 1<<40 || n != float64(int64(n)) {
			return 0, false, "expiration_ttl must be a whole number of seconds"
		}
		return now + int64(n), true, ""
	case exp != "":
		n, err := strconv.ParseFloat(exp, 64)
		if err != nil || n < 0 || n > 1<<42 || n != float64(int64(n)) {
			return 0, false, "expiration must be unix seconds"
		}
		return int64(n), true, ""
	}
	return 0, false, ""
}

// checkMetadata checks metadata given to a put and returns it compacted: JSON, at most
// maxMetadataLen bytes.
func checkMetadata(b []byte) ([]byte, string) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, "metadata must be JSON"
	}
	if buf.Len() > maxMetadataLen {
		return nil, "metadata is larger than " + strconv.Itoa(maxMetadataLen) + " bytes"
	}
	if buf.String() == "null" {
		return nil, ""
	}
	return buf.Bytes(), ""
}

var errValueTooLarge = errors.New("the value is larger than 25 MiB")

// readAtMost reads r to its end, failing past limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, errValueTooLarge
	}
	return b, err
}

// putBody reads a put's value, and metadata when the body is multipart/form-data with parts
// "value" and "metadata", as Cloudflare's SDKs send it.
func putBody(r *http.Request) (value, metadata []byte, status int, msg string) {
	body := http.MaxBytesReader(nil, r.Body, maxValueLen+maxMetadataLen+64<<10)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		value, err := readAtMost(body, maxValueLen)
		if err != nil {
			return nil, nil, http.StatusRequestEntityTooLarge, errValueTooLarge.Error()
		}
		return value, nil, 0, ""
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, http.StatusBadRequest, "the multipart body has no boundary"
	}
	r.Body = body
	hasValue := false
	var fields metadataFields
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, http.StatusBadRequest, "the multipart body is malformed"
		}
		switch p.FormName() {
		case "value":
			if value, err = readAtMost(p, maxValueLen); err != nil {
				return nil, nil, http.StatusRequestEntityTooLarge, errValueTooLarge.Error()
			}
			hasValue = true
		case "metadata":
			raw, err := readAtMost(p, maxMetadataLen+1024)
			if err != nil {
				return nil, nil, http.StatusBadRequest, "metadata is larger than " + strconv.Itoa(maxMetadataLen) + " bytes"
			}
			if metadata, msg = checkMetadata(raw); msg != "" {
				return nil, nil, http.StatusBadRequest, msg
			}
		default:
			if path, ok := strings.CutPrefix(p.FormName(), "metadata."); ok {
				raw, err := readAtMost(p, maxMetadataLen)
				if err != nil || !fields.add(path, string(raw)) {
					return nil, nil, http.StatusBadRequest, "metadata." + path + ": not a field of an object of at most " + strconv.Itoa(maxMetadataLen) + " bytes"
				}
			}
		}
	}
	if !hasValue {
		return nil, nil, http.StatusBadRequest, `a multipart put needs a part named "value"`
	}
	if metadata == nil && fields.root != nil {
		raw, _ := json.Marshal(fields.root)
		if metadata, msg = checkMetadata(raw); msg != "" {
			return nil, nil, http.StatusBadRequest, msg
		}
	}
	return value, metadata, 0, ""
}

// metadataFields builds metadata from multipart parts named "metadata.a.b", which is how
// Cloudflare's Go SDK (v6) sends a metadata map: an object whose leaves are the parts' text
// (multipart carries no types, so a number in the map arrives as a string). A "metadata" part
// holding JSON, Cloudflare's documented form, keeps its types and wins over these.
type metadataFields struct {
	root  map[string]any
	parts int
}

// add sets the leaf at path (dot-separated) to v; false when path conflicts with an earlier
// part or there are too many parts.
func (f *metadataFields) add(path string, v string) bool {
	if f.parts++; f.parts > maxMetadataLen {
		return false
	}
	if f.root == nil {
		f.root = map[string]any{}
	}
	m := f.root
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k]
		if !ok {
			child := map[string]any{}
			m[k] = child
			m = child
			continue
		}
		if m, ok = next.(map[string]any); !ok {
			return false
		}
	}
	last := keys[len(keys)-1]
	if _, taken := m[last]; taken {
		return false
	}
	m[last] = v
	return true
}

func (api *httpAPI) putValue(w http.ResponseWriter, r *http.Request) {
	k, ok := key(w, r)
	if !ok {
		return
	}
	e := entry{key: k}
	q := r.URL.Query()
	var msg string
	if e.expiration, e.expires, msg = expiry(q.Get("expiration"), q.Get("expiration_ttl"), time.Now().Unix()); msg != "" {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, msg)
		return
	}
	ns, done, ok := api.namespace(w, r)
	if !ok {
		return
	}
	defer done()
	value, metadata, status, msg := putBody(r)
	if msg != "" {
		cfapi.WriteError(w, status, apiCodeBadRequest, msg)
		return
	}
	e.value, e.metadata = value, metadata
	if err := ns.putAll(r.Context(), []entry{e}); err != nil {
		writeStorageError(w, err)
		return
	}
	writeOK(w, []byte(`{}`))
}

func (api *httpAPI) deleteValue(w http.ResponseWriter, r *http.Request) {
	k, ns, done, ok := api.keyNamespace(w, r)
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
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n < 1 || n > maxListLimit || n != float64(int(n)) {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "limit must be between 1 and 1000")
			return
		}
		l.limit = int(n)
	}
	if c := q.Get("cursor"); c != "" {
		after, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c, "="))
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
		cfapi.WriteError(w, http.StatusInternalServerError, apiCodeInternal, "a key's metadata is not valid JSON")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

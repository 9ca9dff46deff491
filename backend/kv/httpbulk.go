package kv

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Bulk writes, reads and deletes. A bulk write or delete is one transaction: every key is
// written (deleted) or, on a storage failure, none; keys the request gets wrong are refused
// before anything is written, so unsuccessful_keys is always empty on success.

// bulkPair is one pair of a bulk write.
type bulkPair struct {
	Key           string          `json:"key"`
	Value         *string         `json:"value"`
	Base64        bool            `json:"base64"`
	Expiration    json.Number     `json:"expiration"`
	ExpirationTTL json.Number     `json:"expiration_ttl"`
	Metadata      json.RawMessage `json:"metadata"`
}

// bulkResult is the answer of a bulk write or delete.
type bulkResult struct {
	SuccessfulKeyCount int      `json:"successful_key_count"`
	UnsuccessfulKeys   []string `json:"unsuccessful_keys"`
}

func (api *httpAPI) bulkPut(w http.ResponseWriter, r *http.Request) {
	var pairs []bulkPair
	if !decodeJSON(w, r, maxBulkBody, &pairs, `[{"key": "...", "value": "...", "base64": false, "expiration": 0, "expiration_ttl": 0, "metadata": {}}]`) {
		return
	}
	if len(pairs) > maxBulkWrite {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "at most "+strconv.Itoa(maxBulkWrite)+" pairs per bulk write")
		return
	}
	now := time.Now().Unix()
	es := make([]entry, len(pairs))
	for i, p := range pairs {
		at := "[" + strconv.Itoa(i) + "]: "
		e, msg := p.entry(now)
		if msg != "" {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, at+msg)
			return
		}
		es[i] = e
	}
	ns, done, ok := api.namespace(w, r)
	if !ok {
		return
	}
	defer done()
	if len(es) > 0 {
		if err := ns.putAll(r.Context(), es); err != nil {
			writeStorageError(w, err)
			return
		}
	}
	writeResult(w, bulkResult{SuccessfulKeyCount: len(es), UnsuccessfulKeys: []string{}})
}

// entry checks a pair and turns it into the record to store.
func (p *bulkPair) entry(now int64) (entry, string) {
	if msg := checkHTTPKey(p.Key); msg != "" {
		return entry{}, msg
	}
	if p.Value == nil {
		return entry{}, "value is required"
	}
	e := entry{key: p.Key, value: []byte(*p.Value)}
	if p.Base64 {
		b, err := base64.StdEncoding.DecodeString(*p.Value)
		if err != nil {
			return entry{}, "value is not base64"
		}
		e.value = b
	}
	if len(e.value) > maxValueLen {
		return entry{}, errValueTooLarge.Error()
	}
	var msg string
	if e.expiration, e.expires, msg = expiry(p.Expiration.String(), p.ExpirationTTL.String(), now); msg != "" {
		return entry{}, msg
	}
	if len(p.Metadata) > 0 {
		if e.metadata, msg = checkMetadata(p.Metadata); msg != "" {
			return entry{}, msg
		}
	}
	return e, ""
}

// bulkGetRequest is the body of a bulk read.
type bulkGetRequest struct {
	Keys         []string `json:"keys"`
	Type         string   `json:"type"`
	WithMetadata bool     `json:"withMetadata"`
}

// bulkValue is one key of a bulk read with metadata.
type bulkValue struct {
	Value      json.RawMessage `json:"value"`
	Metadata   json.RawMessage `json:"metadata"`
	Expiration int64           `json:"expiration,omitempty"`
}

func (api *httpAPI) bulkGet(w http.ResponseWriter, r *http.Request) {
	var req bulkGetRequest
	if !decodeJSON(w, r, 1<<20, &req, `{"keys": ["..."], "type": "text" | "json", "withMetadata": false}`) {
		return
	}
	switch {
	case len(req.Keys) == 0:
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "keys is required")
		return
	case len(req.Keys) > maxBulkGet:
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "at most "+strconv.Itoa(maxBulkGet)+" keys per bulk read")
		return
	case req.Type != "" && req.Type != "text" && req.Type != "json":
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, `type must be "text" or "json"`)
		return
	}
	ns, done, ok := api.keysNamespace(w, r, req.Keys)
	if !ok {
		return
	}
	defer done()
	now := time.Now().Unix()
	values := make(map[string]any, len(req.Keys))
	for _, k := range req.Keys {
		e, found, err := ns.get(r.Context(), k, true, now)
		if err != nil {
			writeStorageError(w, err)
			return
		}
		if !found {
			values[k] = nil
			continue
		}
		v, msg := bulkValueJSON(e.value, req.Type == "json")
		if msg != "" {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, strconv.Quote(k)+": "+msg)
			return
		}
		if !req.WithMetadata {
			values[k] = v
			continue
		}
		bv := bulkValue{Value: v, Metadata: e.metadata}
		if bv.Metadata == nil {
			bv.Metadata = json.RawMessage("null")
		}
		if e.expires {
			bv.Expiration = e.expiration
		}
		values[k] = bv
	}
	writeResult(w, map[string]any{"values": values})
}

// bulkValueJSON is a value as a bulk read answers it: a JSON string of its text, or, for type
// json, the JSON it holds.
func bulkValueJSON(value []byte, asJSON bool) (json.RawMessage, string) {
	if asJSON {
		if !json.Valid(value) {
			return nil, "the value is not JSON"
		}
		return value, ""
	}
	if !utf8.Valid(value) {
		return nil, "the value is not UTF-8 text: read it alone with GET .../values/KEY"
	}
	b, _ := json.Marshal(string(value))
	return b, ""
}

func (api *httpAPI) bulkDelete(w http.ResponseWriter, r *http.Request) {
	var keys []string
	if !decodeJSON(w, r, maxBulkBody, &keys, `["key", ...]`) {
		return
	}
	if len(keys) > maxBulkWrite {
		cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, "at most "+strconv.Itoa(maxBulkWrite)+" keys per bulk delete")
		return
	}
	ns, done, ok := api.keysNamespace(w, r, keys)
	if !ok {
		return
	}
	defer done()
	if err := ns.deleteAll(r.Context(), keys); err != nil {
		writeStorageError(w, err)
		return
	}
	writeResult(w, bulkResult{SuccessfulKeyCount: len(keys), UnsuccessfulKeys: []string{}})
}

// keysNamespace checks a bulk request's keys and finds its namespace, or answers 400 or 404;
// done ends the request's hold on the namespace.
func (api *httpAPI) keysNamespace(w http.ResponseWriter, r *http.Request, keys []string) (*Namespace, func(), bool) {
	for _, k := range keys {
		if msg := checkHTTPKey(k); msg != "" {
			cfapi.WriteError(w, http.StatusBadRequest, apiCodeBadRequest, strconv.Quote(k)+": "+msg)
			return nil, nil, false
		}
	}
	return api.namespace(w, r)
}

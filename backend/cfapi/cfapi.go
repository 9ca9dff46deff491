// Package cfapi holds what the HTTP APIs of the embedded backends (D1's query API, Workers KV's
// REST API) share with Cloudflare's: the bearer-token check and the JSON error envelope
// {"result":null,"success":false,"errors":[{"code","message"}],"messages":[]}.
//
// It also keeps the Catalog of the stores the APIs create (catalog.go): D1's databases and KV's
// namespaces, each a file in a data directory and an entry in a list file there, described to
// it by the backend's Entry. It does no I/O of its own beyond writing responses, the list files
// (WriteFileAtomic) and removing a deleted store's files; everything is safe for concurrent use.
package cfapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Error codes both APIs use, as Cloudflare numbers them.
const (
	CodeAuth    = 10000 // missing, wrong or disabled credentials
	CodeNoRoute = 7003  // no such endpoint
)

// Authenticate refuses a request without "Authorization: Bearer token" before next looks at
// it, so an unauthenticated client learns nothing, not even which databases exist. An empty
// token disables the API: every request gets 403. product names the API in messages ("D1").
func Authenticate(token, product string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	disabled := token == ""
	realm := `Bearer realm="` + strings.ToLower(product) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if disabled {
			WriteError(w, http.StatusForbidden, CodeAuth, "the "+product+" HTTP API is disabled: configure an API token to enable it")
			return
		}
		if !bearerMatches(r.Header.Get("Authorization"), &want) {
			w.Header().Set("WWW-Authenticate", realm)
			WriteError(w, http.StatusUnauthorized, CodeAuth, "Authentication error")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerMatches reports whether the Authorization header carries the token whose SHA-256 is
// want. The digests are compared, in constant time, so that neither the token's bytes nor its
// length show in the timing.
func bearerMatches(header string, want *[sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// WriteError answers with the error envelope.
func WriteError(w http.ResponseWriter, status, code int, msg string) {
	m, _ := json.Marshal(msg)
	body := append(make([]byte, 0, 96+len(m)), `{"result":null,"success":false,"errors":[{"code":`...)
	body = strconv.AppendInt(body, int64(code), 10)
	body = append(body, `,"message":`...)
	body = append(body, m...)
	body = append(body, `}],"messages":[]}`...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

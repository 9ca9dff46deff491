package pstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend creates and drops the database users behind minted credentials.
type Backend interface {
	// Create makes user with password, with the privileges of role (MySQL) or of the
	// inherited roles (Postgres), valid until expires.
	Create(ctx context.Context, user, password, role string, inherited []string, expires time.Time) error
	// Drop removes user and ends its connections.
	Drop(ctx context.Context, user string) error
}

// DB is a database of an organization.
type DB struct {
	Name     string
	Kind     string   // "mysql" or "postgresql"
	Branches []string // branch names
	// Host is the access_host_url of its credentials (host:port of the real database).
	Host string
	// Backend holds its users; nil: credentials are made up and work nowhere.
	Backend Backend
	// Replica, when set, is where a MySQL credential minted with replica true leads (its
	// access_host_url and its users); nil: to Host and Backend, as PlanetScale's replica
	// credentials share the primary's host.
	Replica *Replica
}

// Replica is the replica server of a database: a test's second real server.
type Replica struct {
	Host    string
	Backend Backend
}

// Cred is a credential the fake minted.
type Cred struct {
	ID, Name, Username, Password, Role string
	Org, DB, Branch                    string
	Replica                            bool
	TTL                                time.Duration
	Expires                            time.Time
	Deleted, Expired                   bool
	Host                               string // its access_host_url

	backend Backend // holds its user
	timer   *time.Timer
}

// Fake is the fake API. Create it with New; it serves until Close.
type Fake struct {
	URL      string // the base URL, as PLANETSCALE_API_URL takes it
	TokenID  string
	Token    string
	PageSize int // list answers have at most this many entries per page; New sets 2

	srv *httptest.Server

	mu       sync.Mutex
	orgs     map[string][]*DB
	creds    map[string]*Cred // by id
	order    []string         // ids in minting order
	down     int              // when not 0, every request answers this status
	fails    []fault          // answers for the next requests, first first
	requests []string         // "METHOD PATH" of every request
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

type fault struct {
	status     int
	retryAfter string
}

// New starts a fake API that accepts the service token tokenID:token.
func New(tokenID, token string) *Fake {
	f := &Fake{TokenID: tokenID, Token: token, PageSize: 2, orgs: map[string][]*DB{}, creds: map[string]*Cred{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL + "/v1"
	return f
}

// Close stops the server and the expiry timers; it drops no user.
func (f *Fake) Close() {
	f.srv.Close()
	f.mu.Lock()
	for _, c := range f.creds {
		if c.timer != nil && c.timer.Stop() {
			f.wg.Done()
		}
	}
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// AddDB adds a database to org (creating the organization).
func (f *Fake) AddDB(org string, db *DB) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orgs[org] = append(f.orgs[org], db)
}

// AddOrg adds an organization with no database.
func (f *Fake) AddOrg(org string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.orgs[org] == nil {
		f.orgs[org] = []*DB{}
	}
}

// SetDown makes every request answer status (0: serve again).
func (f *Fake) SetDown(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = status
}

// FailNext makes the next request answer status, with a Retry-After header when retryAfter is
// not empty; calls queue up.
func (f *Fake) FailNext(status int, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, fault{status, retryAfter})
}

// Requests returns "METHOD PATH" of every request so far.
func (f *Fake) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// Creds returns a copy of every credential minted, in minting order.
func (f *Fake) Creds() []Cred {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Cred, 0, len(f.order))
	for _, id := range f.order {
		c := *f.creds[id]
		c.timer, c.backend = nil, nil
		out = append(out, c)
	}
	return out
}

// Live returns the credentials neither deleted nor expired.
func (f *Fake) Live() []Cred {
	var live []Cred
	for _, c := range f.Creds() {
		if !c.Deleted && !c.Expired {
			live = append(live, c)
		}
	}
	return live
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	down := f.down
	var ft *fault
	if len(f.fails) > 0 {
		ft = &f.fails[0]
		f.fails = f.fails[1:]
	}
	f.mu.Unlock()
	switch {
	case down != 0:
		apiError(w, down, "unavailable", "the fake API is down")
		return
	case ft != nil:
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		apiError(w, ft.status, strings.ToLower(strings.ReplaceAll(http.StatusText(ft.status), " ", "_")), "injected failure")
		return
	}
	if r.Header.Get("Authorization") != f.TokenID+":"+f.Token {
		apiError(w, http.StatusUnauthorized, "unauthorized", "The access token is invalid")
		return
	}
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1"), "/"), "/")
	if len(parts) < 3 || parts[0] != "organizations" || parts[2] != "databases" {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	f.mu.Lock()
	dbs, ok := f.orgs[parts[1]]
	f.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	if len(parts) == 3 && r.Method == http.MethodGet {
		f.list(w, r, len(dbs), func(i int) any {
			return map[string]any{"name": dbs[i].Name, "kind": dbs[i].Kind, "state": "ready", "region": map[string]string{"slug": "us-east"}}
		})
		return
	}
	var db *DB
	for _, d := range dbs {
		if d.Name == parts[3] {
			db = d
		}
	}
	if db == nil || len(parts) < 5 || parts[4] != "branches" {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	if len(parts) == 5 && r.Method == http.MethodGet {
		f.list(w, r, len(db.Branches), func(i int) any {
			return map[string]any{"name": db.Branches[i], "production": i == 0, "ready": true}
		})
		return
	}
	if len(parts) < 7 || !contains(db.Branches, parts[5]) {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	collection := "passwords"
	if db.Kind == "postgresql" {
		collection = "roles"
	}
	if parts[6] != collection {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	switch {
	case len(parts) == 7 && r.Method == http.MethodPost:
		f.mint(w, r, parts[1], db, parts[5])
	case len(parts) == 9 && parts[8] == "renew" && r.Method == http.MethodPost:
		f.renew(w, parts[7])
	case len(parts) == 8 && r.Method == http.MethodDelete:
		f.delete(w, r, parts[7], db)
	default:
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// list answers one page of n entries.
func (f *Fake) list(w http.ResponseWriter, r *http.Request, n int, entry func(int) any) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > f.PageSize {
		per = f.PageSize
	}
	data := []any{}
	for i := (page - 1) * per; i < min(n, page*per); i++ {
		data = append(data, entry(i))
	}
	var next any
	if page*per < n {
		next = page + 1
	}
	writeJSON(w, http.StatusOK, map[string]any{"type": "list", "current_page": page, "next_page": next, "data": data})
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (f *Fake) mint(w http.ResponseWriter, r *http.Request, org string, db *DB, branch string) {
	var req struct {
		Name           string   `json:"name"`
		Role           string   `json:"role"`
		TTL            int64    `json:"ttl"`
		Replica        bool     `json:"replica"`
		InheritedRoles []string `json:"inherited_roles"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusUnprocessableEntity, "invalid_params", "the body is not JSON")
		return
	}
	if db.Kind == "mysql" && !contains([]string{"reader", "writer", "readwriter", "admin"}, req.Role) {
		apiError(w, http.StatusUnprocessableEntity, "invalid_params", "role is not one of reader, writer, readwriter, admin")
		return
	}
	c := &Cred{ID: randHex(6), Name: req.Name, Username: "ps" + randHex(6), Password: "pscale_pw_" + randHex(16),
		Role: req.Role, Org: org, DB: db.Name, Branch: branch, Replica: req.Replica, TTL: time.Duration(req.TTL) * time.Second,
		Host: db.Host, backend: db.Backend}
	if req.Replica && db.Kind != "mysql" {
		apiError(w, http.StatusUnprocessableEntity, "invalid_params", "replica is for MySQL passwords")
		return
	}
	if req.Replica && db.Replica != nil {
		c.Host, c.backend = db.Replica.Host, db.Replica.Backend
	}
	if c.TTL > 0 {
		c.Expires = time.Now().Add(c.TTL)
	}
	if c.backend != nil {
		expires := c.Expires
		if err := c.backend.Create(r.Context(), c.Username, c.Password, c.Role, req.InheritedRoles, expires); err != nil {
			apiError(w, http.StatusInternalServerError, "internal", "creating the user failed: "+err.Error())
			return
		}
	}
	f.mu.Lock()
	f.creds[c.ID] = c
	f.order = append(f.order, c.ID)
	f.armExpiry(c)
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, f.credJSON(c, db))
}

func (f *Fake) credJSON(c *Cred, db *DB) map[string]any {
	j := map[string]any{"id": c.ID, "name": c.Name, "username": c.Username, "access_host_url": c.Host,
		"ttl_seconds": int64(c.TTL / time.Second), "replica": c.Replica, "role": c.Role}
	if !c.Expires.IsZero() {
		j["expires_at"] = c.Expires.UTC().Format(time.RFC3339Nano)
	}
	if db.Kind == "postgresql" {
		j["password"] = c.Password
		j["database_name"] = db.Name
	} else {
		j["plain_text"] = c.Password
	}
	return j
}

// armExpiry drops c's user at its expiry. f.mu is held.
func (f *Fake) armExpiry(c *Cred) {
	if c.timer != nil && c.timer.Stop() {
		f.wg.Done()
	}
	if c.Expires.IsZero() {
		return
	}
	f.wg.Add(1)
	c.timer = time.AfterFunc(time.Until(c.Expires), func() {
		defer f.wg.Done()
		f.mu.Lock()
		if c.Deleted || c.Expired || time.Now().Before(c.Expires) {
			f.mu.Unlock()
			return
		}
		c.Expired = true
		f.mu.Unlock()
		if c.backend != nil {
			ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
			c.backend.Drop(ctx, c.Username)
			cancel()
		}
	})
}

func (f *Fake) renew(w http.ResponseWriter, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.creds[id]
	if c == nil || c.Deleted || c.Expired {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	c.Expires = time.Now().Add(c.TTL)
	if c.timer != nil && c.timer.Stop() {
		f.wg.Done()
	}
	f.armExpiry(c)
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID, "username": c.Username, "expires_at": c.Expires.UTC().Format(time.RFC3339Nano)})
}

func (f *Fake) delete(w http.ResponseWriter, r *http.Request, id string, db *DB) {
	f.mu.Lock()
	c := f.creds[id]
	if c == nil || c.Deleted {
		f.mu.Unlock()
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return
	}
	c.Deleted = true
	if c.timer != nil && c.timer.Stop() {
		f.wg.Done()
	}
	f.mu.Unlock()
	if c.backend != nil {
		if err := c.backend.Drop(r.Context(), c.Username); err != nil {
			apiError(w, http.StatusInternalServerError, "internal", "dropping the user failed: "+err.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

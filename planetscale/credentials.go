package planetscale

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Roles of a MySQL (Vitess) password; a Postgres role gets the built-in roles that grant the
// same (InheritedRoles).
const (
	RoleReader     = "reader"
	RoleWriter     = "writer"
	RoleReadWriter = "readwriter"
	RoleAdmin      = "admin"
)

// Roles lists the accepted roles.
var Roles = []string{RoleReader, RoleWriter, RoleReadWriter, RoleAdmin}

// InheritedRoles are the PostgreSQL roles a Postgres credential of role gets.
func InheritedRoles(role string) []string {
	switch role {
	case RoleReader:
		return []string{"pg_read_all_data"}
	case RoleWriter:
		return []string{"pg_write_all_data"}
	case RoleAdmin:
		return []string{"postgres"}
	}
	return []string{"pg_read_all_data", "pg_write_all_data"}
}

// Credential is a database user minted through the API: a MySQL password or a Postgres role.
// Its Password is secret: String and LogValue leave it out, and no error holds it.
type Credential struct {
	ID       string    // the API's id, for renewing and deleting it
	Username string    // the database user
	Password string    // the database password (plain_text / password)
	Host     string    // access_host_url: host, or host:port
	Database string    // the database name to connect to (Postgres: database_name; MySQL: the database's)
	Expires  time.Time // zero if it never expires
	Replica  bool      // it reaches the replicas (MySQL)
}

// String names the credential without its password.
func (c Credential) String() string { return fmt.Sprintf("credential %s (user %s)", c.ID, c.Username) }

// apiCredential is the JSON of a password (MySQL) or a role (Postgres).
type apiCredential struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	PlainText     string    `json:"plain_text"` // MySQL
	Password      string    `json:"password"`   // Postgres
	AccessHostURL string    `json:"access_host_url"`
	DatabaseName  string    `json:"database_name"` // Postgres
	ExpiresAt     time.Time `json:"expires_at"`
	TTLSeconds    int64     `json:"ttl_seconds"`
	Replica       bool      `json:"replica"`
}

func (a apiCredential) credential(t Target) Credential {
	c := Credential{ID: a.ID, Username: a.Username, Password: a.PlainText, Host: a.AccessHostURL,
		Database: a.DatabaseName, Expires: a.ExpiresAt, Replica: a.Replica}
	if c.Password == "" {
		c.Password = a.Password
	}
	if c.Database == "" {
		c.Database = t.Database
	}
	return c
}

// collection is the path of t's passwords (MySQL) or roles (Postgres).
func (t Target) collection() string {
	kind := "passwords"
	if t.Kind == KindPostgres {
		kind = "roles"
	}
	return "/organizations/" + esc(t.Org) + "/databases/" + esc(t.Database) + "/branches/" + esc(t.Branch) + "/" + kind
}

// MintRequest says what credential to mint.
type MintRequest struct {
	Name    string        // shown in PlanetScale's console
	Role    string        // one of Roles
	TTL     time.Duration // rounded up to whole seconds; 0 means none
	Replica bool          // MySQL: a credential that reaches the replicas
}

// Mint creates a credential on t's branch: POST .../passwords (MySQL, with name, role, ttl and
// replica) or POST .../roles (Postgres, with name, ttl and the inherited roles of the role).
func (c *Client) Mint(ctx context.Context, t Target, r MintRequest) (Credential, error) {
	ttl := int64((r.TTL + time.Second - 1) / time.Second)
	var body any
	if t.Kind == KindPostgres {
		body = struct {
			Name           string   `json:"name"`
			TTL            int64    `json:"ttl,omitempty"`
			InheritedRoles []string `json:"inherited_roles"`
		}{r.Name, ttl, InheritedRoles(r.Role)}
	} else {
		body = struct {
			Name    string `json:"name"`
			Role    string `json:"role"`
			TTL     int64  `json:"ttl,omitempty"`
			Replica bool   `json:"replica"`
		}{r.Name, r.Role, ttl, r.Replica}
	}
	var a apiCredential
	if err := c.do(ctx, http.MethodPost, t.collection(), nil, body, &a); err != nil {
		return Credential{}, err
	}
	if a.ID == "" || a.Username == "" || a.PlainText+a.Password == "" || a.AccessHostURL == "" {
		return Credential{}, fmt.Errorf("planetscale: POST %s: the answer lacks the id, username, password or access_host_url", t.collection())
	}
	cred := a.credential(t)
	if cred.Expires.IsZero() && a.TTLSeconds > 0 {
		cred.Expires = time.Now().Add(time.Duration(a.TTLSeconds) * time.Second)
	}
	return cred, nil
}

// Renew extends the life of credential id by its TTL (POST .../{id}/renew) and returns its new
// expiry. The API does not send the password again.
func (c *Client) Renew(ctx context.Context, t Target, id string) (time.Time, error) {
	var a apiCredential
	if err := c.do(ctx, http.MethodPost, t.collection()+"/"+esc(id)+"/renew", nil, struct{}{}, &a); err != nil {
		return time.Time{}, err
	}
	return a.ExpiresAt, nil
}

// Delete deletes credential id (DELETE .../{id}); the database user stops working. A
// credential already gone (404) counts as deleted.
func (c *Client) Delete(ctx context.Context, t Target, id string) error {
	err := c.do(ctx, http.MethodDelete, t.collection()+"/"+esc(id), nil, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

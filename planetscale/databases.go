package planetscale

import (
	"context"
	"fmt"
)

// Kinds of PlanetScale databases, as the API's kind field says.
const (
	KindMySQL    = "mysql"      // Vitess, spoken to as MySQL
	KindPostgres = "postgresql" // PlanetScale Postgres
)

// Database is one database of an organization, as GET /organizations/{org}/databases lists it.
type Database struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`  // KindMySQL or KindPostgres
	State string `json:"state"` // such as "ready"
	// Region is where the database's primary runs.
	Region struct {
		Slug string `json:"slug"`
	} `json:"region"`
}

// Branch is one branch of a database.
type Branch struct {
	Name       string `json:"name"`
	Production bool   `json:"production"`
	Ready      bool   `json:"ready"`
}

// Databases lists the databases of org, every page of them.
func (c *Client) Databases(ctx context.Context, org string) ([]Database, error) {
	return list[Database](ctx, c, "/organizations/"+esc(org)+"/databases")
}

// Branches lists the branches of database db of org, every page of them.
func (c *Client) Branches(ctx context.Context, org, db string) ([]Branch, error) {
	return list[Branch](ctx, c, "/organizations/"+esc(org)+"/databases/"+esc(db)+"/branches")
}

// Target is one branch of one database: where credentials are minted.
type Target struct {
	Org, Database, Branch string
	Kind                  string // KindMySQL or KindPostgres, from the API (Resolve)
}

func (t Target) String() string { return t.Org + "/" + t.Database + "/" + t.Branch }

// Resolve checks that the organization, the database and the branch of t exist for the token
// and returns t with the database's kind. Its errors say which of them was not found (or
// whether the token was refused), with what the API said.
func (c *Client) Resolve(ctx context.Context, t Target) (Target, error) {
	dbs, err := c.Databases(ctx, t.Org)
	switch {
	case IsUnauthorized(err):
		return t, fmt.Errorf("planetscale: the service token was refused listing the databases of organization %q: %w", t.Org, err)
	case IsNotFound(err):
		return t, fmt.Errorf("planetscale: organization %q not found (or the token may not see it): %w", t.Org, err)
	case err != nil:
		return t, fmt.Errorf("planetscale: listing the databases of organization %q: %w", t.Org, err)
	}
	found := false
	for _, d := range dbs {
		if d.Name == t.Database {
			t.Kind, found = d.Kind, true
		}
	}
	if !found {
		return t, fmt.Errorf("planetscale: organization %q has no database %q (it has %d: %s)", t.Org, t.Database, len(dbs), names(dbs, func(d Database) string { return d.Name }))
	}
	if t.Kind != KindMySQL && t.Kind != KindPostgres {
		return t, fmt.Errorf("planetscale: database %s/%s is of kind %q, which Slipstream does not know", t.Org, t.Database, t.Kind)
	}
	branches, err := c.Branches(ctx, t.Org, t.Database)
	switch {
	case IsUnauthorized(err):
		return t, fmt.Errorf("planetscale: the service token was refused listing the branches of %s/%s: %w", t.Org, t.Database, err)
	case err != nil:
		return t, fmt.Errorf("planetscale: listing the branches of %s/%s: %w", t.Org, t.Database, err)
	}
	for _, b := range branches {
		if b.Name == t.Branch {
			return t, nil
		}
	}
	return t, fmt.Errorf("planetscale: database %s/%s has no branch %q (it has %s)", t.Org, t.Database, t.Branch, names(branches, func(b Branch) string { return b.Name }))
}

// names lists up to 10 names for a message.
func names[T any](xs []T, name func(T) string) string {
	s := ""
	for i, x := range xs {
		if i == 10 {
			return s + ", ..."
		}
		if i > 0 {
			s += ", "
		}
		s += name(x)
	}
	if s == "" {
		return "none"
	}
	return s
}

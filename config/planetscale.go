package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// PlanetScale holds the settings of a database whose origin is a PlanetScale branch,
// planetscale://ORG/DATABASE/BRANCH?role=ROLE. Slipstream mints the database credentials
// itself with a service token and rotates them; the origin URL holds no password.
//
//	[[database]]
//	origin = "planetscale://acme/shop/main?role=readwriter"
//	service_token_file = "/var/run/secrets/planetscale/token" # ID:TOKEN; or the environment
//	credential_ttl = "1h"
//	replica_reads = true     # MySQL: cacheable reads go to the replicas
//	read_your_writes = "2s"
type PlanetScale struct {
	// ServiceTokenFile is a file holding the service token as ID:TOKEN, such as a mounted
	// Kubernetes secret; empty: the environment variables PLANETSCALE_SERVICE_TOKEN_ID and
	// PLANETSCALE_SERVICE_TOKEN.
	ServiceTokenFile string `toml:"service_token_file"`
	// CredentialTTL is the life of each minted credential; the next one is minted when two
	// thirds of it have passed. 0: 1h.
	CredentialTTL Duration `toml:"credential_ttl"`
	// ReplicaReads mints a second, replica credential (MySQL) and sends the reads the edge
	// would cache (outside a transaction, read-only) to the replicas, everything else to the
	// primary; false: every statement goes to the primary. It needs caching on: the edge's
	// classification of reads is the cache's. The pool holds the replicas (`slipstream serve`,
	// or `slipstream pool`, to which the edges send their routing); a reload applies a change.
	ReplicaReads bool `toml:"replica_reads"`
	// ReadYourWrites is how long after a session wrote its reads go to the primary, with
	// replica_reads; 0: 2s.
	ReadYourWrites Duration `toml:"read_your_writes"`
}

// DefaultReadYourWrites is read_your_writes when not configured.
const DefaultReadYourWrites = 2 * time.Second

// SchemePlanetScale is the scheme of a PlanetScale origin.
const SchemePlanetScale = "planetscale"

// DefaultCredentialTTL is the life of a minted PlanetScale credential when not configured.
const DefaultCredentialTTL = time.Hour

// planetScaleRoles are the accepted values of the role parameter.
var planetScaleRoles = []string{"reader", "writer", "readwriter", "admin"}

// PlanetScaleOrigin is a parsed planetscale:// origin.
type PlanetScaleOrigin struct {
	Org, Database, Branch string
	Role                  string // reader, writer, readwriter (the default) or admin
}

func (o PlanetScaleOrigin) String() string {
	return SchemePlanetScale + "://" + o.Org + "/" + o.Database + "/" + o.Branch + "?role=" + o.Role
}

// ParsePlanetScaleOrigin parses planetscale://ORG/DATABASE/BRANCH[?role=ROLE], reporting every
// problem together.
func ParsePlanetScaleOrigin(raw string) (PlanetScaleOrigin, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != SchemePlanetScale || u.Opaque != "" {
		return PlanetScaleOrigin{}, errors.New("origin is not planetscale://ORG/DATABASE/BRANCH?role=readwriter")
	}
	var problems []error
	if u.User != nil {
		problems = append(problems, errors.New("a planetscale:// origin takes no user or password: Slipstream mints them with the service token"))
	}
	o := PlanetScaleOrigin{Org: u.Hostname(), Role: "readwriter"}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if o.Org == "" || len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		problems = append(problems, errors.New("origin: want planetscale://ORG/DATABASE/BRANCH, such as planetscale://acme/shop/main"))
	} else {
		o.Database, o.Branch = parts[0], parts[1]
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		problems = append(problems, errors.New("origin query is not valid URL encoding"))
	}
	for k, v := range q {
		switch {
		case k != "role":
			problems = append(problems, fmt.Errorf("origin: unknown parameter %q of a planetscale:// origin (it takes role)", k))
		case !slices.Contains(planetScaleRoles, v[0]):
			problems = append(problems, fmt.Errorf("origin role %q is not one of %s", v[0], strings.Join(planetScaleRoles, ", ")))
		default:
			o.Role = v[0]
		}
	}
	return o, errors.Join(problems...)
}

// IsPlanetScale reports whether the database's origin is a PlanetScale branch.
func (d Database) IsPlanetScale() bool {
	return strings.HasPrefix(d.Origin, SchemePlanetScale+"://")
}

// SetPlanetScaleKind records the kind the PlanetScale API gave the database ("mysql" or
// "postgresql") and applies the defaults that depend on it.
func (d *Database) SetPlanetScaleKind(apiKind string) {
	d.Kind = defaultKind
	if apiKind == "mysql" {
		d.Kind = KindMySQL
	}
	d.normalize()
}

// normalizePlanetScale applies the defaults of a planetscale:// database: its name is the
// PlanetScale database's, clients log in as "slipstream" and, with no password set, are let
// in without one (loopback listeners only, which Validate checks); the kind comes from the
// API later (SetPlanetScaleKind).
func (d *Database) normalizePlanetScale() {
	o, _ := ParsePlanetScaleOrigin(d.Origin)
	if d.Name == "" {
		d.Name = o.Database
	}
	if d.User == "" {
		d.User = "slipstream"
	}
	if d.AuthMethod == "" && d.Password == "" {
		d.AuthMethod = "trust"
	}
	if d.CredentialTTL.Duration == 0 {
		d.CredentialTTL.Duration = DefaultCredentialTTL
	}
	if d.ReplicaReads && d.ReadYourWrites.Duration == 0 {
		d.ReadYourWrites.Duration = DefaultReadYourWrites
	}
}

// validatePlanetScale reports the problems of a planetscale:// database.
func (d Database) validatePlanetScale(add func(string, ...any)) {
	if _, err := ParsePlanetScaleOrigin(d.Origin); err != nil {
		for _, e := range unjoin(err) {
			add("%v", e)
		}
	}
	if d.Kind != "" && d.Kind != KindMySQL && d.Kind != defaultKind {
		add("kind %q: a PlanetScale database is of kind mysql or postgres, which the API tells (leave kind out)", d.Kind)
	}
	if d.CredentialTTL.Duration < 0 {
		add("credential_ttl is %s: must not be negative", d.CredentialTTL)
	}
	if d.CredentialTTL.Duration > 0 && d.CredentialTTL.Duration < 3*time.Second {
		add("credential_ttl is %s: at least 3s", d.CredentialTTL)
	}
	if d.ReadYourWrites.Duration < 0 {
		add("read_your_writes is %s: must not be negative", d.ReadYourWrites)
	}
	if d.ReadYourWrites.Duration > 0 && !d.ReplicaReads {
		add("read_your_writes is set, but replica_reads is not: without replicas every read is the primary's")
	}
	if d.ReplicaReads && d.Caching.Disabled {
		add("replica_reads needs caching: the reads that go to the replicas are those the cache would keep (caching.disabled is true)")
	}
	if d.ReplicaReads && d.Kind == defaultKind {
		add("replica_reads: a PlanetScale Postgres credential reaches the primary only (replica_reads is for MySQL databases)")
	}
}

package config

// Roles are the settings of a database that lets any role of the origin log in, each with
// its own password, none of which Slipstream's configuration holds. The edge checks a client
// against the role's verifier, which the pool looks up at the origin with auth_query as the
// origin URL's user and keeps in memory only. With any_role, user and password are not what
// clients log in with (the origin URL's user still runs auth_query), and max_connections
// bounds each role's origin connections.
type Roles struct {
	// AnyRole lets any role the origin accepts log in with its own password (kind postgres or
	// mysql; for mysql, users whose password mysql_native_password stores, checked with
	// auth_method mysql_native_password, its default then). false: only user, with password.
	AnyRole bool `toml:"any_role"`
	// AuthQuery returns a role's name and stored password given the name as $1; empty:
	// PgBouncer's "SELECT usename, passwd FROM pg_shadow WHERE usename = $1" (superuser only;
	// docs/roles.md has a SECURITY DEFINER function for a lookup role without superuser).
	// Kind mysql: the name is "?", and empty means
	// "SELECT User, authentication_string FROM mysql.user WHERE User = ?".
	AuthQuery string `toml:"auth_query"`
	// AuthCacheTTL is how long a role's verifier is used before it is looked up again (a failed
	// login looks it up again at once); 0: 1m.
	AuthCacheTTL Duration `toml:"auth_cache_ttl"`
	// MaxDBConnections bounds the origin connections of all roles together; 0: no bound but
	// max_connections per role.
	MaxDBConnections int `toml:"max_db_connections"`
}

// validateRoles checks the any_role settings; add records a problem.
func (d Database) validateRoles(add func(string, ...any)) {
	if !d.AnyRole {
		switch {
		case d.AuthQuery != "":
			add("auth_query is set, but any_role is false")
		case d.MaxDBConnections != 0:
			add("max_db_connections is set, but any_role is false")
		}
		return
	}
	switch {
	case d.Kind != defaultKind && d.Kind != KindMySQL:
		add("any_role is for kind postgres or mysql, not %q", d.Kind)
	case d.Kind == KindMySQL && d.AuthMethod == "caching_sha2_password":
		add("any_role on kind mysql checks mysql_native_password: a role's stored verifier cannot check caching_sha2_password (set auth_method = \"mysql_native_password\")")
	}
	if d.AuthMethod == "trust" {
		add("any_role needs a password check: auth_method trust lets every role in without one")
	}
	if d.AuthCacheTTL.Duration < 0 {
		add("auth_cache_ttl is %s: must not be negative", d.AuthCacheTTL)
	}
	if d.MaxDBConnections < 0 {
		add("max_db_connections is %d: want 0 (no bound) or more", d.MaxDBConnections)
	}
}

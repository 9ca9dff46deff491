package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration of one slipstream process. Every field documents what its
// zero value means; Normalize puts those defaults in place.
type Config struct {
	PGListen    string     `toml:"pg_listen"`    // client listener for PostgreSQL, host:port; zero: "127.0.0.1:6432"
	MySQLListen string     `toml:"mysql_listen"` // client listener for MySQL and MariaDB, host:port; zero: "127.0.0.1:3307"
	HTTPListen  string     `toml:"http_listen"`  // /metrics and /healthz, host:port; zero: "127.0.0.1:9432"
	DataDir     string     `toml:"data_dir"`     // state on disk, such as the self-signed certificate in DataDir/tls; zero: "./slipstream-data"
	TLS         TLS        `toml:"tls"`          // zero: a self-signed certificate
	Databases   []Database `toml:"database"`     // the [[database]] tables; none: nothing to serve yet
	Cache       Cache      `toml:"cache"`
	APIToken    string     `toml:"api_token"` // bearer token of the D1 and KV HTTP APIs on http_listen; empty: those APIs answer 403
	// APITokenFile names a file holding APIToken (a mounted secret); its trailing newline is
	// dropped. Empty: APIToken as set. Both set is an error.
	APITokenFile string `toml:"api_token_file"`
	// ShutdownMinDelay: after SIGTERM, keep accepting clients this long (with /readyz failing)
	// before draining, so that load balancers stop routing here first; 0: drain at once.
	ShutdownMinDelay Duration `toml:"shutdown_min_delay"`
	// ShutdownTimeout: after SIGTERM, sessions still open this long are ended and the process
	// exits; 0: 30s.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// The split deployment: `slipstream pool` near the databases, `slipstream edge` near the
	// applications, a QUIC tunnel between them. `slipstream serve` ignores these.
	Region       string   `toml:"region"`        // pool: the region it runs in, for logs; empty: "default"
	TunnelListen string   `toml:"tunnel_listen"` // pool: UDP host:port where edges connect; edge without [[pool]]: where pools dial in (reverse tunnel); empty: none
	DialEdges    []string `toml:"dial_edge"`     // pool: UDP host:port of edges to connect out to (reverse tunnel); empty: none
	Pools        []Pool   `toml:"pool"`          // edge: the [[pool]] tables, the pools it dials; empty: pools must dial in (tunnel_listen)
	CertsDir     string   `toml:"certs_dir"`     // edge and pool: the deployment CA and node certificates (slipstream certs); empty: "./slipstream-certs"
	// DropSlots makes `slipstream pool --drop-slot` drop its databases' replication slots (the
	// change streams') and exit instead of serving. Never in the file: an action, not a setting.
	DropSlots bool `toml:"-"`
	Admin          // admin_users, stats_users, admin_password, admin_password_file (admin.go)
}

// Pool is a pool an edge reaches over the tunnel.
type Pool struct {
	Name    string `toml:"name"`    // the pool's name, such as its region; required
	Address string `toml:"address"` // UDP host:port of its tunnel_listen; required
}

// Cache sizes the result cache the edge shares among its databases, and the one a pool
// shares among its edges (a second layer, which answers one edge's reads from another's).
type Cache struct {
	MaxBytes int64 `toml:"max_bytes"` // answers kept in memory, in bytes; 0: 256 MiB
	// Disabled turns off a pool's cache (edges keep theirs, set per database with
	// [database.caching]); false: the pool keeps one of MaxBytes. Only `slipstream pool` reads it.
	Disabled bool `toml:"disabled"`
}

// Caching is one database's result-cache policy (Hyperdrive's defaults).
type Caching struct {
	Disabled             bool     `toml:"disabled"`               // true: never cache this database's results
	MaxAge               Duration `toml:"max_age"`                // how long an answer may be served; 0: 60s; at most 1h
	StaleWhileRevalidate Duration `toml:"stale_while_revalidate"` // then served stale while one refresh runs, this long; 0: 15s
	MaxResultBytes       int64    `toml:"max_result_bytes"`       // larger answers pass through uncached; 0: 50 MiB
}

// TLS is the certificate the client listener presents.
type TLS struct {
	CertFile string `toml:"cert_file"` // PEM certificate chain; empty: a self-signed certificate in DataDir/tls, created on first start
	KeyFile  string `toml:"key_file"`  // PEM private key for CertFile; empty only when CertFile is
}

// Database is one database that clients reach through slipstream, and the origin behind it.
type Database struct {
	Name     string `toml:"name"`     // database name clients connect to; empty: the origin URL's database
	Kind     string `toml:"kind"`     // "postgres" (an origin server), "mysql" (a MySQL or MariaDB server), "d1" (an embedded SQLite database) or "kv" (a KV namespace); empty: "mysql" for a mysql:// origin, for a planetscale:// one what the PlanetScale API says, else "postgres"
	Origin   string `toml:"origin"`   // postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=..., mysql://USER:PASSWORD@HOST:PORT/DB?tls=... or planetscale://ORG/DATABASE/BRANCH?role=...; required for kinds postgres and mysql, empty for d1 and kv
	Path     string `toml:"path"`     // kinds d1 and kv: the SQLite file; empty: DataDir/d1/NAME.sqlite or DataDir/kv/NAME.kv
	User     string `toml:"user"`     // user clients log in as; empty: the origin's user
	Password string `toml:"password"` // password clients log in with; empty: the origin's password
	// PasswordFile names a file holding Password (a mounted secret); its trailing newline is
	// dropped, and when the origin URL has no password it is the origin's too. Empty: Password
	// as set. Both set is an error.
	PasswordFile   string   `toml:"password_file"`
	AuthMethod     string   `toml:"auth_method"`     // how clients prove Password: "scram-sha-256", "md5", "password" (cleartext, over TLS only) or "trust" (no password, loopback listener only); kind mysql: "caching_sha2_password", "mysql_native_password" or "trust"; empty: "scram-sha-256", for kind mysql "caching_sha2_password"
	MaxConnections int      `toml:"max_connections"` // origin connections for this database; 0: 20
	QueueTimeout   Duration `toml:"queue_timeout"`   // how long a client waits for an origin connection before SQLSTATE 53300; 0: 30s
	IdleTimeout    Duration `toml:"idle_timeout"`    // an idle origin connection is closed after this; 0: 10m
	MaxLifetime    Duration `toml:"max_lifetime"`    // an origin connection is replaced after this long; 0: 1h
	CatalogRefresh Duration `toml:"catalog_refresh"` // kinds postgres and mysql: how often the pool reads the origin's views, triggers, foreign keys and functions again while it has connections, to learn of changes made without Slipstream; 0: 30s
	Caching        Caching  `toml:"caching"`         // zero: cached with Hyperdrive's defaults
	PoolRegion     string   `toml:"pool_region"`     // edge: the [[pool]] that serves this database while it is up; empty: the pool nearest the origin
	// Invalidation is how cached reads learn of writes made without Slipstream: "stream", from
	// the origin's change stream (PostgreSQL logical replication, the MySQL binlog), which lets
	// caching.max_age go up to 24h, or "ttl", by max_age only (at most 1h). Empty: "stream" for
	// kinds postgres and mysql, which falls back to ttl with a warning when the origin can't
	// give a stream; "ttl" for d1 and kv.
	Invalidation string `toml:"invalidation"`
	Stream       Stream `toml:"stream"` // the change stream's slot, publication, server id and max lag; zero: the defaults
	// AllowLocalInfile lets MySQL clients run LOAD DATA LOCAL INFILE (kind mysql); false: the
	// edge does not negotiate CLIENT_LOCAL_FILES and the origin refuses it.
	AllowLocalInfile bool `toml:"allow_local_infile"`
	// PlanetScale are the settings of a planetscale:// origin (planetscale.go).
	PlanetScale
	// Roles let any role of the origin log in with its own password (roles.go).
	Roles
}

// Defaults that Normalize applies to zero fields.
const (
	defaultPGListen       = "127.0.0.1:6432"
	defaultMySQLListen    = "127.0.0.1:3307"
	defaultHTTPListen     = "127.0.0.1:9432"
	defaultDataDir        = "./slipstream-data"
	defaultCertsDir       = "./slipstream-certs"
	defaultRegion         = "default"
	defaultKind           = "postgres"
	defaultAuthMethod     = "scram-sha-256"
	defaultMySQLAuth      = "caching_sha2_password"
	defaultMaxConnections = 20
	defaultQueueTimeout   = 30 * time.Second
	defaultIdleTimeout    = 10 * time.Minute
	defaultMaxLifetime    = time.Hour
)

// kinds and authMethods are the accepted values of Database.Kind and Database.AuthMethod.
var (
	kinds            = []string{"postgres", "mysql", "d1", "kv"}
	authMethods      = []string{"scram-sha-256", "md5", "password", "trust"}
	mysqlAuthMethods = []string{"caching_sha2_password", "mysql_native_password", "trust"}
)

// Default returns the process-wide defaults: the listen addresses, the data and certificates
// directories, the region. It has no databases.
func Default() Config {
	return Config{PGListen: defaultPGListen, MySQLListen: defaultMySQLListen, HTTPListen: defaultHTTPListen, DataDir: defaultDataDir,
		Cache: Cache{MaxBytes: 256 << 20}, Region: defaultRegion, CertsDir: defaultCertsDir}
}

// Parse decodes a TOML configuration strictly: a key that no field takes is an error naming
// the key. It returns what the file says, without defaults; see Normalize.
func Parse(data []byte) (Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, tomlError(err)
	}
	var unknown []error
	undecoded := md.Undecoded()
	for _, k := range undecoded {
		// A whole unknown table is one mistake: name the table, not each key in it.
		if len(k) > 1 && slices.ContainsFunc(undecoded, func(p toml.Key) bool { return slices.Equal(p, k[:len(k)-1]) }) {
			continue
		}
		unknown = append(unknown, fmt.Errorf("unknown setting %q", k.String()))
	}
	if len(unknown) > 0 {
		return Config{}, errors.Join(unknown...)
	}
	return c, nil
}

// tomlError keeps a syntax error's line and key but drops its message when the key holds a
// secret: the TOML lexer quotes the offending text, and an unquoted password is exactly what
// it would quote.
func tomlError(err error) error {
	var perr toml.ParseError
	if !errors.As(err, &perr) {
		return err
	}
	key := perr.LastKey
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	if key == "password" || key == "origin" {
		return fmt.Errorf("toml: line %d (last key %q): invalid value (strings need double quotes; the value is not shown because it may hold a password)",
			perr.Position.Line, perr.LastKey)
	}
	return err
}

// Load reads and parses the TOML file at path; see Parse.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err) // the *PathError names the file
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// MergeOrigins applies --origin values, [NAME=]URL, to a configuration read from a file. An
// origin whose database (NAME, else the URL's database) has the name of a database already in c
// that clients reach on the same listener replaces that database's origin and keeps its other
// settings; any other origin is appended as a new database. Two origins given for the same name
// are both kept, so that Validate reports the duplicate instead of one of them silently losing.
// Unparsable URLs are appended for Validate to report.
func (c *Config) MergeOrigins(origins []string) {
	existing := len(c.Databases)
	replaced := make([]bool, existing)
	for _, v := range origins {
		name, raw := SplitOriginFlag(v)
		add := Database{Name: name, Origin: raw}
		if name == "" {
			o, _ := ParseOrigin(raw)
			name = o.Database
		}
		i := -1
		if name != "" {
			i = slices.IndexFunc(c.Databases[:existing], func(d Database) bool { return d.effectiveName() == name && d.sharesListener(add) })
		}
		if i >= 0 && !replaced[i] {
			c.Databases[i].Origin = raw
			if add.Name != "" {
				c.Databases[i].Name = add.Name // else Normalize would name it after the new URL
			}
			replaced[i] = true
			continue
		}
		c.Databases = append(c.Databases, add)
	}
}

// effectiveName is the name Normalize would give d.
func (d Database) effectiveName() string {
	if d.Name != "" {
		return d.Name
	}
	o, _ := ParseOrigin(d.Origin)
	return o.Database
}

// Normalize replaces every zero that has a default with that default; it is idempotent.
// A database's Name, User and Password default to those of its origin URL; an origin that
// does not parse leaves them empty for Validate to report.
func (c *Config) Normalize() {
	def := Default()
	if c.PGListen == "" {
		c.PGListen = def.PGListen
	}
	if c.HTTPListen == "" {
		c.HTTPListen = def.HTTPListen
	}
	if c.MySQLListen == "" {
		c.MySQLListen = def.MySQLListen
	}
	if c.DataDir == "" {
		c.DataDir = def.DataDir
	}
	if c.Cache.MaxBytes == 0 {
		c.Cache.MaxBytes = 256 << 20
	}
	if c.CertsDir == "" {
		c.CertsDir = def.CertsDir
	}
	if c.Region == "" {
		c.Region = def.Region
	}
	for i := range c.Databases {
		d := &c.Databases[i]
		d.normalize()
		switch {
		case d.Path != "" || d.Name == "":
		case d.Kind == KindD1:
			d.Path = filepath.Join(c.DataDir, "d1", d.Name+".sqlite")
		case d.Kind == KindKV:
			d.Path = filepath.Join(c.DataDir, "kv", d.Name+".kv")
		}
	}
}

// KindMySQL is a MySQL or MariaDB origin server, served on mysql_listen.
const KindMySQL = "mysql"

// Kinds of databases that live in this process rather than behind an origin URL.
const (
	KindD1 = "d1" // a SQLite database, in SQLite's dialect, as Cloudflare D1
	KindKV = "kv" // a KV namespace: one table kv(key, value, metadata, expiration)
)

// Embedded reports whether the database lives in this process (d1, kv).
func (d Database) Embedded() bool { return d.Kind == KindD1 || d.Kind == KindKV }

// EmbeddedDefault returns the database served when nothing is configured: D1 database "main"
// in DataDir, open to local clients without a password (as PostgreSQL's own local default).
// Validate refuses it on a listener beyond loopback.
func EmbeddedDefault() Database {
	return Database{Kind: KindD1, Name: "main", User: "slipstream", AuthMethod: "trust"}
}

// loopback reports whether a listen address only accepts local connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *Database) normalize() {
	if d.IsPlanetScale() {
		d.normalizePlanetScale()
		if d.Kind == "" {
			return // the rest depends on the kind, which the API tells (SetPlanetScaleKind)
		}
	}
	o, _ := ParseOrigin(d.Origin)
	if d.Name == "" {
		d.Name = o.Database
	}
	if d.User == "" {
		d.User = o.User
	}
	if d.Password == "" {
		d.Password = o.Password
	}
	if d.Kind == "" {
		d.Kind = defaultKind
		if o.Scheme == "mysql" {
			d.Kind = KindMySQL
		}
	}
	if d.AuthMethod == "" {
		d.AuthMethod = defaultAuthMethod
		if d.Kind == KindMySQL {
			d.AuthMethod = defaultMySQLAuth
			if d.AnyRole {
				d.AuthMethod = "mysql_native_password" // the only check a role's stored verifier allows
			}
		}
	}
	if d.MaxConnections == 0 {
		d.MaxConnections = defaultMaxConnections
	}
	if d.QueueTimeout.Duration == 0 {
		d.QueueTimeout.Duration = defaultQueueTimeout
	}
	if d.IdleTimeout.Duration == 0 {
		d.IdleTimeout.Duration = defaultIdleTimeout
	}
	if d.MaxLifetime.Duration == 0 {
		d.MaxLifetime.Duration = defaultMaxLifetime
	}
	if d.Caching.MaxAge.Duration == 0 {
		d.Caching.MaxAge.Duration = 60 * time.Second
	}
	if d.Caching.MaxResultBytes == 0 {
		d.Caching.MaxResultBytes = 50 << 20
	}
	if d.Caching.StaleWhileRevalidate.Duration == 0 {
		d.Caching.StaleWhileRevalidate.Duration = 15 * time.Second
	}
}

// Validate reports every problem in c together (errors.Join), one per line, each naming the
// setting or, for a conflict, both settings. It expects a normalized Config: an empty string
// that Normalize would have filled is reported as missing, while a zero number or duration is
// accepted because it stands for its default. No message holds a password.
func (c Config) Validate() error {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	for _, p := range c.validateAdmin() {
		add("%s", p)
	}

	for _, l := range []struct{ setting, addr, example string }{
		{"pg_listen", c.PGListen, defaultPGListen},
		{"mysql_listen", c.MySQLListen, defaultMySQLListen},
		{"http_listen", c.HTTPListen, defaultHTTPListen},
	} {
		if l.addr == "" {
			add("%s is empty: want host:port, such as %q", l.setting, l.example)
		} else if _, _, err := net.SplitHostPort(l.addr); err != nil {
			add("%s %q is not host:port, such as %q", l.setting, l.addr, l.example)
		}
	}
	for _, pair := range [][2]string{{"pg_listen", "http_listen"}, {"mysql_listen", "pg_listen"}, {"mysql_listen", "http_listen"}} {
		a, b := c.listen(pair[0]), c.listen(pair[1])
		if a != "" && a == b && !strings.HasSuffix(a, ":0") {
			add("%s and %s are both %q: give each its own port", pair[0], pair[1], a)
		}
	}
	if c.DataDir == "" {
		add("data_dir is empty")
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		add("tls.cert_file is set but tls.key_file is empty: set both, or neither for a self-signed certificate")
	case c.TLS.CertFile == "" && c.TLS.KeyFile != "":
		add("tls.key_file is set but tls.cert_file is empty: set both, or neither for a self-signed certificate")
	}

	if c.ShutdownMinDelay.Duration < 0 || c.ShutdownTimeout.Duration < 0 {
		add("shutdown_min_delay and shutdown_timeout must not be negative")
	}

	byName := map[string][]int{} // the databases with each name so far
	for i, d := range c.Databases {
		problems = append(problems, d.validate(i)...)
		settings := []string{c.listenSetting(d)}
		if d.Embedded() {
			settings = append(settings, "mysql_listen") // embedded databases speak both protocols
		}
		for _, setting := range settings {
			if listen := c.listen(setting); d.AuthMethod == "trust" && listen != "" && !loopback(listen) {
				add("database %q: auth_method trust lets anyone in, and %s %q is not a loopback address: set user, password and another auth_method",
					d.Name, setting, listen)
			}
		}
		if d.Name == "" {
			continue
		}
		// A PostgreSQL and a MySQL database may share a name: their clients come in on
		// different listeners.
		if j := slices.IndexFunc(byName[d.Name], func(j int) bool { return c.Databases[j].sharesListener(d) }); j >= 0 {
			j = byName[d.Name][j]
			add("database #%d and database #%d are both named %q (origins %s and %s): set a different name on one of them",
				j+1, i+1, d.Name, RedactURL(c.Databases[j].Origin), RedactURL(d.Origin))
			continue
		}
		byName[d.Name] = append(byName[d.Name], i)
	}
	return errors.Join(problems...)
}

// ValidateEdge reports, besides Validate's, the problems of a configuration for `slipstream
// edge`: it needs a pool to reach, or a tunnel_listen for pools to dial in.
func (c Config) ValidateEdge() error {
	problems := []error{c.Validate()}
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if len(c.Databases) == 0 {
		add("no database: an edge needs [[database]] tables or --origin URLs for their names, credentials and caching")
	}
	if len(c.Pools) == 0 && c.TunnelListen == "" {
		add("no pool: set [[pool]] tables (--pool NAME=ADDR), or tunnel_listen (--tunnel-listen ADDR) for pools that dial in")
	}
	seen := map[string]bool{}
	for i, p := range c.Pools {
		if p.Name == "" {
			add("pool #%d: name is empty", i+1)
		} else if seen[p.Name] {
			add("pool %q: two [[pool]] tables have this name", p.Name)
		}
		seen[p.Name] = true
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			add("pool #%d: address %q is not host:port", i+1, p.Address)
		}
	}
	for _, d := range c.Databases {
		if d.PoolRegion != "" && !seen[d.PoolRegion] {
			add("database %s: pool_region %q names no [[pool]] table", d.Name, d.PoolRegion)
		}
	}
	problems = append(problems, c.validateTunnelListen())
	return errors.Join(problems...)
}

// ValidatePool reports, besides Validate's, the problems of a configuration for `slipstream
// pool`: it needs a tunnel_listen for edges to connect to, or edges to dial.
func (c Config) ValidatePool() error {
	problems := []error{c.Validate()}
	if len(c.Databases) == 0 {
		problems = append(problems, errors.New("no database: a pool needs [[database]] tables or --origin URLs"))
	}
	if c.TunnelListen == "" && len(c.DialEdges) == 0 && !c.DropSlots {
		problems = append(problems, errors.New("tunnel_listen is empty and dial_edge too: set --tunnel-listen ADDR for edges to connect to, or --dial-edge ADDR"))
	}
	for _, a := range c.DialEdges {
		if _, _, err := net.SplitHostPort(a); err != nil {
			problems = append(problems, fmt.Errorf("dial_edge %q is not host:port", a))
		}
	}
	problems = append(problems, c.validateTunnelListen())
	return errors.Join(problems...)
}

func (c Config) validateTunnelListen() error {
	if c.TunnelListen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.TunnelListen); err != nil {
		return fmt.Errorf("tunnel_listen %q is not host:port, such as \"0.0.0.0:7432\"", c.TunnelListen)
	}
	return nil
}

// listen returns the address of the listener setting named.
func (c Config) listen(setting string) string {
	switch setting {
	case "pg_listen":
		return c.PGListen
	case "mysql_listen":
		return c.MySQLListen
	}
	return c.HTTPListen
}

func (c Config) listenSetting(d Database) string {
	if d.Kind == KindMySQL {
		return "mysql_listen"
	}
	return "pg_listen"
}

// validate reports the problems of the database at index i of Config.Databases.
func (d Database) validate(i int) []error {
	label := fmt.Sprintf("database #%d", i+1)
	if d.Name != "" {
		label = fmt.Sprintf("database %q", d.Name)
	}
	var problems []error
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: "+format, append([]any{label}, args...)...))
	}

	if d.Embedded() {
		if d.Origin != "" {
			add("origin is set, but a %s database keeps its data in path (origin is for kind postgres)", d.Kind)
		}
		if d.Name == "" {
			add("name is empty: a %s database needs one", d.Kind)
		}
		if d.AuthMethod != "trust" && (d.User == "" || d.Password == "") {
			add("auth_method %s needs user and password", d.AuthMethod)
		}
		d.validateRoles(add)
		d.validateLimits(add)
		return problems
	}
	if d.IsPlanetScale() {
		if d.AnyRole {
			add("any_role needs an origin URL whose user looks roles up; a planetscale:// origin's credentials rotate")
		}
		d.validatePlanetScale(add)
		if d.Kind != "" {
			d.validateLimits(add)
		}
		return problems
	}
	o, err := ParseOrigin(d.Origin)
	if err != nil {
		for _, e := range unjoin(err) {
			add("%v", e)
		}
	}
	// An empty name or user that the origin could have supplied: Normalize was not called,
	// or the origin lacks it too and has just been reported.
	if d.Name == "" && o.Database != "" {
		add("name is empty")
	}
	if d.User == "" && o.User != "" {
		add("user is empty")
	}
	if !slices.Contains(kinds, d.Kind) {
		add("kind %q is not supported (supported: %s)", d.Kind, strings.Join(kinds, ", "))
	}
	switch {
	case d.Kind == KindMySQL && o.Scheme != "" && o.Scheme != "mysql":
		add("kind mysql needs a mysql:// origin, not %s://", o.Scheme)
	case d.Kind != KindMySQL && o.Scheme == "mysql":
		add("a mysql:// origin needs kind mysql, not %q", d.Kind)
	}
	if d.AllowLocalInfile && d.Kind != KindMySQL {
		add("allow_local_infile is for kind mysql, not %q", d.Kind)
	}
	d.validateRoles(add)
	d.validateLimits(add)
	return problems
}

// validateLimits checks the settings every kind shares; add records a problem.
func (d Database) validateLimits(add func(string, ...any)) {
	if methods := authMethods; d.Kind == KindMySQL {
		if !slices.Contains(mysqlAuthMethods, d.AuthMethod) {
			add("auth_method %q is not supported for kind mysql (supported: %s)", d.AuthMethod, strings.Join(mysqlAuthMethods, ", "))
		}
	} else if !slices.Contains(methods, d.AuthMethod) {
		add("auth_method %q is not supported (supported: %s)", d.AuthMethod, strings.Join(methods, ", "))
	}
	if d.MaxConnections < 0 {
		add("max_connections is %d: want 0 (meaning %d) or more", d.MaxConnections, defaultMaxConnections)
	}
	d.validateStream(add)
	if d.Caching.MaxResultBytes < 0 {
		add("caching.max_result_bytes is %d: must not be negative", d.Caching.MaxResultBytes)
	}
	for _, t := range []struct {
		setting string
		value   Duration
	}{{"queue_timeout", d.QueueTimeout}, {"idle_timeout", d.IdleTimeout}, {"max_lifetime", d.MaxLifetime}, {"catalog_refresh", d.CatalogRefresh}, {"caching.max_age", d.Caching.MaxAge}, {"caching.stale_while_revalidate", d.Caching.StaleWhileRevalidate}} {
		if t.value.Duration < 0 {
			add("%s is %s: must not be negative", t.setting, t.value)
		}
	}
}

// unjoin splits an errors.Join result into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// String names the database and its origin, without passwords.
func (d Database) String() string {
	return fmt.Sprintf("%s (%s)", d.Name, RedactURL(d.Origin))
}

// LogValue keeps passwords out of structured logs, whichever handler formats them: a JSON
// handler would otherwise marshal every field.
func (c Config) LogValue() slog.Value {
	dbs := make([]string, len(c.Databases))
	for i, d := range c.Databases {
		dbs[i] = d.String()
	}
	return slog.GroupValue(
		slog.String("pg_listen", c.PGListen),
		slog.String("mysql_listen", c.MySQLListen),
		slog.String("http_listen", c.HTTPListen),
		slog.String("data_dir", c.DataDir),
		slog.String("tls_cert_file", c.TLS.CertFile),
		slog.Any("databases", dbs),
	)
}

// LogValue keeps passwords out of structured logs, whichever handler formats them.
func (d Database) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", d.Name),
		slog.String("kind", d.Kind),
		slog.String("origin", RedactURL(d.Origin)),
		slog.String("user", d.User),
		slog.String("auth_method", d.AuthMethod),
	)
}

package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/config"
)

// secret is the password used throughout; no error or printed form may contain it.
const secret = "s3cret-pw"

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   config.Config
		want config.Config
	}{
		{
			name: "an empty configuration gets the listen addresses and data directory of Default",
			in:   config.Config{},
			want: config.Default(),
		},
		{
			name: "a database with only an origin takes its name, user and password from it",
			in:   config.Config{Databases: []config.Database{{Origin: "postgres://app:" + secret + "@db.example.com/appdb"}}},
			want: config.Config{
				PGListen: "127.0.0.1:6432", MySQLListen: "127.0.0.1:3307", HTTPListen: "127.0.0.1:9432", DataDir: "./slipstream-data", Cache: config.Cache{MaxBytes: 256 << 20},
				CertsDir: "./slipstream-certs", Region: "default",
				Databases: []config.Database{{
					Name: "appdb", Kind: "postgres", Origin: "postgres://app:" + secret + "@db.example.com/appdb",
					User: "app", Password: secret, AuthMethod: "scram-sha-256", MaxConnections: 20,
					QueueTimeout: dur(30 * time.Second), IdleTimeout: dur(10 * time.Minute), MaxLifetime: dur(time.Hour),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
				}},
			},
		},
		{
			name: "a mysql origin makes a kind mysql database asking for caching_sha2_password",
			in:   config.Config{Databases: []config.Database{{Origin: "mysql://app:" + secret + "@db.example.com/appdb"}}},
			want: config.Config{
				PGListen: "127.0.0.1:6432", MySQLListen: "127.0.0.1:3307", HTTPListen: "127.0.0.1:9432", DataDir: "./slipstream-data", Cache: config.Cache{MaxBytes: 256 << 20},
				CertsDir: "./slipstream-certs", Region: "default",
				Databases: []config.Database{{
					Name: "appdb", Kind: "mysql", Origin: "mysql://app:" + secret + "@db.example.com/appdb",
					User: "app", Password: secret, AuthMethod: "caching_sha2_password", MaxConnections: 20,
					QueueTimeout: dur(30 * time.Second), IdleTimeout: dur(10 * time.Minute), MaxLifetime: dur(time.Hour),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
				}},
			},
		},
		{
			name: "any_role on a mysql origin asks for mysql_native_password",
			in: config.Config{Databases: []config.Database{{Origin: "mysql://lookup:" + secret + "@db.example.com/appdb",
				Roles: config.Roles{AnyRole: true}}}},
			want: config.Config{
				PGListen: "127.0.0.1:6432", MySQLListen: "127.0.0.1:3307", HTTPListen: "127.0.0.1:9432", DataDir: "./slipstream-data", Cache: config.Cache{MaxBytes: 256 << 20},
				CertsDir: "./slipstream-certs", Region: "default",
				Databases: []config.Database{{
					Name: "appdb", Kind: "mysql", Origin: "mysql://lookup:" + secret + "@db.example.com/appdb",
					User: "lookup", Password: secret, AuthMethod: "mysql_native_password", MaxConnections: 20,
					QueueTimeout: dur(30 * time.Second), IdleTimeout: dur(10 * time.Minute), MaxLifetime: dur(time.Hour),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
					Roles:   config.Roles{AnyRole: true},
				}},
			},
		},
		{
			name: "settings that are given are kept",
			in: config.Config{PGListen: "0.0.0.0:5432", Databases: []config.Database{{
				Name: "front", Origin: "postgres://app:" + secret + "@db.example.com/appdb", User: "client", Password: "client-pw",
				AuthMethod: "md5", MaxConnections: 3, QueueTimeout: dur(time.Second), IdleTimeout: dur(time.Minute), MaxLifetime: dur(2 * time.Hour),
			}}},
			want: config.Config{
				PGListen: "0.0.0.0:5432", MySQLListen: "127.0.0.1:3307", HTTPListen: "127.0.0.1:9432", DataDir: "./slipstream-data", Cache: config.Cache{MaxBytes: 256 << 20},
				CertsDir: "./slipstream-certs", Region: "default",
				Databases: []config.Database{{
					Name: "front", Kind: "postgres", Origin: "postgres://app:" + secret + "@db.example.com/appdb", User: "client", Password: "client-pw",
					AuthMethod: "md5", MaxConnections: 3, QueueTimeout: dur(time.Second), IdleTimeout: dur(time.Minute), MaxLifetime: dur(2 * time.Hour),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
				}},
			},
		},
		{
			name: "an origin that is not a URL leaves the derived fields empty",
			in:   config.Config{Databases: []config.Database{{Origin: "postgres://app:pw/x@h/db"}}},
			want: config.Config{
				PGListen: "127.0.0.1:6432", MySQLListen: "127.0.0.1:3307", HTTPListen: "127.0.0.1:9432", DataDir: "./slipstream-data", Cache: config.Cache{MaxBytes: 256 << 20},
				CertsDir: "./slipstream-certs", Region: "default",
				Databases: []config.Database{{
					Kind: "postgres", Origin: "postgres://app:pw/x@h/db", AuthMethod: "scram-sha-256", MaxConnections: 20,
					QueueTimeout: dur(30 * time.Second), IdleTimeout: dur(10 * time.Minute), MaxLifetime: dur(time.Hour),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.Normalize()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Normalize:\n got %#v\nwant %#v", got, tt.want)
			}
			again := got
			again.Databases = append([]config.Database(nil), got.Databases...)
			again.Normalize()
			if !reflect.DeepEqual(again, got) {
				t.Errorf("a second Normalize changed the config:\n got %#v\nwant %#v", again, got)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		want    config.Config
		wantErr []string // substrings of the error; nil: no error
	}{
		{
			name: "an empty file is an empty configuration, without defaults",
			toml: "",
			want: config.Config{},
		},
		{
			name: "settings are read into their fields",
			toml: "pg_listen = \"0.0.0.0:6432\"\n[[database]]\norigin = \"postgres://a:b@h/db\"\nqueue_timeout = \"1m30s\"\n",
			want: config.Config{PGListen: "0.0.0.0:6432", Databases: []config.Database{{Origin: "postgres://a:b@h/db", QueueTimeout: dur(90 * time.Second)}}},
		},
		{
			name:    "an unknown key is rejected and named",
			toml:    "pg_listen = \"127.0.0.1:6432\"\n[[database]]\norigin = \"postgres://a:b@h/db\"\nmax_conections = 5\n",
			wantErr: []string{`unknown setting "database.max_conections"`},
		},
		{
			name:    "every unknown key is named",
			toml:    "listen = \"x\"\n[tls]\ncert = \"c.pem\"\n",
			wantErr: []string{`unknown setting "listen"`, `unknown setting "tls.cert"`},
		},
		{
			name:    "an unknown table is named once, not key by key",
			toml:    "[caches]\nmax_age = \"1s\"\nsize = 3\n",
			wantErr: []string{`unknown setting "caches"`},
		},
		{
			name:    "a duration without a unit is rejected with the key and an example",
			toml:    "[[database]]\nidle_timeout = 30\n",
			wantErr: []string{"database.idle_timeout", `invalid duration "30"`, `"30s"`},
		},
		{
			name:    "a wrongly typed value names the key",
			toml:    "[[database]]\nmax_connections = \"many\"\n",
			wantErr: []string{"line 2", "database.max_connections"},
		},
		{
			name:    "an unquoted password is not echoed by the syntax error",
			toml:    "[[database]]\npassword = " + secret + "\n",
			wantErr: []string{"line 2", "database.password", "double quotes"},
		},
		{
			name:    "an unquoted origin is not echoed by the syntax error",
			toml:    "[[database]]\norigin = postgres://app:" + secret + "@h/db\n",
			wantErr: []string{"line 2", "database.origin", "double quotes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.toml))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Parse:\n got %#v\nwant %#v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded with %#v, want an error", got)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the password", err)
			}
			if n := strings.Count(err.Error(), "unknown setting"); n > len(tt.wantErr) {
				t.Errorf("error names %d unknown settings, want %d: %q", n, len(tt.wantErr), err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("a file with two database tables loads and validates", func(t *testing.T) {
		c, err := config.Load("testdata/two-databases.toml")
		if err != nil {
			t.Fatal(err)
		}
		c.Normalize()
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		want := config.Config{
			PGListen: "0.0.0.0:6432", MySQLListen: "127.0.0.1:3307", HTTPListen: "127.0.0.1:9500", DataDir: "/var/lib/slipstream",
			TLS: config.TLS{CertFile: "/etc/slipstream/tls.crt", KeyFile: "/etc/slipstream/tls.key"},
			Databases: []config.Database{
				{
					Name: "app", Kind: "postgres", Origin: "postgres://app:" + secret + "@db.example.com:5432/app?sslmode=verify-full",
					User: "app", Password: secret, AuthMethod: "scram-sha-256", MaxConnections: 10,
					QueueTimeout: dur(5 * time.Second), IdleTimeout: dur(10 * time.Minute), MaxLifetime: dur(time.Hour),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
				},
				{
					Name: "reports", Kind: "postgres", Origin: "postgresql://reader:" + secret + "@replica.example.com/app",
					User: "analyst", Password: "client-pw", AuthMethod: "md5", MaxConnections: 20,
					QueueTimeout: dur(30 * time.Second), IdleTimeout: dur(time.Minute), MaxLifetime: dur(30 * time.Minute),
					Caching: config.Caching{MaxAge: dur(time.Minute), StaleWhileRevalidate: dur(15 * time.Second), MaxResultBytes: 50 << 20},
				},
			},
			Cache:    config.Cache{MaxBytes: 256 << 20},
			CertsDir: "./slipstream-certs", Region: "default",
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Load:\n got %#v\nwant %#v", c, want)
		}
	})
	t.Run("one file serves the edge and the pool of a split deployment", func(t *testing.T) {
		c, err := config.Parse([]byte(`region = "eu"
tunnel_listen = "0.0.0.0:7432"
certs_dir = "/etc/slipstream/certs"
dial_edge = ["edge.example.com:7433"]

[[pool]]
name = "us-east"
address = "pool.example.com:7432"

[[database]]
origin = "postgres://app:pw@db.example.com/app"
`))
		if err != nil {
			t.Fatal(err)
		}
		c.Normalize()
		if err := c.ValidateEdge(); err != nil {
			t.Errorf("ValidateEdge: %v", err)
		}
		if err := c.ValidatePool(); err != nil {
			t.Errorf("ValidatePool: %v", err)
		}
		want := []config.Pool{{Name: "us-east", Address: "pool.example.com:7432"}}
		if c.Region != "eu" || c.TunnelListen != "0.0.0.0:7432" || c.CertsDir != "/etc/slipstream/certs" ||
			!reflect.DeepEqual(c.Pools, want) || !reflect.DeepEqual(c.DialEdges, []string{"edge.example.com:7433"}) {
			t.Errorf("parsed %+v", c)
		}
	})
	t.Run("an edge without a pool and a pool without a tunnel are refused", func(t *testing.T) {
		c := config.Config{Databases: []config.Database{{Origin: "postgres://app:pw@db.example.com/app"}}}
		c.Normalize()
		if err := c.ValidateEdge(); err == nil || !strings.Contains(err.Error(), "no pool") {
			t.Errorf("ValidateEdge: %v, want a missing pool reported", err)
		}
		if err := c.ValidatePool(); err == nil || !strings.Contains(err.Error(), "tunnel_listen is empty") {
			t.Errorf("ValidatePool: %v, want a missing tunnel_listen reported", err)
		}
	})
	t.Run("a missing file is an error naming it", func(t *testing.T) {
		_, err := config.Load("testdata/does-not-exist.toml")
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "testdata/does-not-exist.toml") {
			t.Errorf("Load: %v, want a not-exist error naming the file", err)
		}
	})
	t.Run("a parse error names the file", func(t *testing.T) {
		path := t.TempDir() + "/bad.toml"
		writeFile(t, path, "nonsense = 1\n")
		_, err := config.Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"nonsense"`) {
			t.Errorf("Load: %v, want an error naming %s and the key", err, path)
		}
	})
}

// valid returns a normalized configuration that passes Validate, for cases to break.
func valid() config.Config {
	c := config.Config{Databases: []config.Database{
		{Origin: "postgres://app:" + secret + "@db.example.com:5432/app"},
		{Origin: "postgres://reports:" + secret + "@db.example.com:5432/reports"},
	}}
	c.Normalize()
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []string // one substring per expected problem; nil: valid
	}{
		{name: "a normalized configuration with two databases is valid", change: func(*config.Config) {}},
		{name: "no databases at all is valid", change: func(c *config.Config) { c.Databases = nil }},
		{name: "both listeners on port 0 is valid", change: func(c *config.Config) { c.PGListen, c.HTTPListen = "127.0.0.1:0", "127.0.0.1:0" }},
		{
			name:   "an empty listen address is reported",
			change: func(c *config.Config) { c.PGListen = "" },
			want:   []string{"pg_listen is empty"},
		},
		{
			name:   "a listen address without a port is reported",
			change: func(c *config.Config) { c.HTTPListen = "localhost" },
			want:   []string{`http_listen "localhost" is not host:port`},
		},
		{
			name:   "one address for both listeners names both settings",
			change: func(c *config.Config) { c.HTTPListen = c.PGListen },
			want:   []string{`pg_listen and http_listen are both "127.0.0.1:6432"`},
		},
		{
			name:   "a certificate without a key names both settings",
			change: func(c *config.Config) { c.TLS.CertFile = "tls.crt" },
			want:   []string{"tls.cert_file is set but tls.key_file is empty"},
		},
		{
			name:   "a key without a certificate names both settings",
			change: func(c *config.Config) { c.TLS.KeyFile = "tls.key" },
			want:   []string{"tls.key_file is set but tls.cert_file is empty"},
		},
		{
			name:   "an origin that is not a URL is reported without its password",
			change: func(c *config.Config) { c.Databases[0].Origin = "postgres://app:" + secret + "/x@db.example.com/app" },
			want:   []string{`database "app": origin is not a valid URL: percent-encode`},
		},
		{
			name:   "an unsupported scheme is reported",
			change: func(c *config.Config) { c.Databases[0].Origin = "mongodb://app:" + secret + "@db.example.com/app" },
			want:   []string{`database "app": origin scheme "mongodb" is not supported`},
		},
		{
			name:   "a mysql origin under kind postgres is reported",
			change: func(c *config.Config) { c.Databases[0].Origin = "mysql://app:" + secret + "@db.example.com/app" },
			want:   []string{`database "app": a mysql:// origin needs kind mysql, not "postgres"`},
		},
		{
			name: "kind mysql takes MySQL auth methods only",
			change: func(c *config.Config) {
				c.Databases[0].Origin, c.Databases[0].Kind = "mysql://app:"+secret+"@db.example.com/app", "mysql"
			},
			want: []string{`database "app": auth_method "scram-sha-256" is not supported for kind mysql (supported: caching_sha2_password, mysql_native_password, trust)`},
		},
		{
			name:   "allow_local_infile is for kind mysql only",
			change: func(c *config.Config) { c.Databases[0].AllowLocalInfile = true },
			want:   []string{`database "app": allow_local_infile is for kind mysql, not "postgres"`},
		},
		{
			name:   "mysql_listen on the port of pg_listen is reported",
			change: func(c *config.Config) { c.MySQLListen = c.PGListen },
			want:   []string{`mysql_listen and pg_listen are both`},
		},
		{
			name: "trust on an embedded database needs a loopback mysql_listen too",
			change: func(c *config.Config) {
				c.MySQLListen = "0.0.0.0:3307"
				c.Databases = []config.Database{config.EmbeddedDefault()}
				c.Normalize()
			},
			want: []string{`database "main": auth_method trust lets anyone in, and mysql_listen "0.0.0.0:3307" is not a loopback address`},
		},
		{
			name: "trust on a MySQL database needs a loopback mysql_listen",
			change: func(c *config.Config) {
				c.MySQLListen = "0.0.0.0:3307"
				c.Databases[0].Origin, c.Databases[0].Kind, c.Databases[0].AuthMethod = "mysql://app:"+secret+"@db.example.com/app", "mysql", "trust"
			},
			want: []string{`database "app": auth_method trust lets anyone in, and mysql_listen "0.0.0.0:3307" is not a loopback address`},
		},
		{
			name: "an origin without user, host and database reports all three",
			change: func(c *config.Config) {
				c.Databases = []config.Database{{Origin: "postgres://"}}
				c.Normalize()
			},
			want: []string{"database #1: origin has no user", "database #1: origin has no host", "database #1: origin has no database"},
		},
		{
			name: "a key=value connection string is reported without its password",
			change: func(c *config.Config) {
				c.Databases = []config.Database{{Origin: "host=h user=app password=" + secret}}
				c.Normalize()
			},
			want: []string{"database #1: origin has no scheme"},
		},
		{
			name:   "an unknown sslmode is reported",
			change: func(c *config.Config) { c.Databases[1].Origin += "?sslmode=requir" },
			want:   []string{`database "reports": origin sslmode "requir" is not one of disable, allow, prefer, require, verify-ca, verify-full`},
		},
		{
			name: "any_role with its settings is valid",
			change: func(c *config.Config) {
				c.Databases[0].Roles = config.Roles{AnyRole: true, AuthQuery: "SELECT 1", MaxDBConnections: 10}
			},
		},
		{
			name: "any_role's settings without any_role, or with trust or a mysql origin, are reported",
			change: func(c *config.Config) {
				c.Databases[0].AuthQuery = "SELECT 1"
				c.Databases[1].Roles = config.Roles{AnyRole: true, MaxDBConnections: -1}
				c.Databases[1].AuthMethod = "trust"
			},
			want: []string{`database "app": auth_query is set, but any_role is false`,
				"any_role needs a password check: auth_method trust lets every role in without one",
				"max_db_connections is -1: want 0 (no bound) or more"},
		},
		{
			name: "any_role on kind mysql with caching_sha2_password is reported",
			change: func(c *config.Config) {
				c.Databases[1].Kind, c.Databases[1].Origin = "mysql", "mysql://reports:"+secret+"@db.example.com/reports"
				c.Databases[1].Roles = config.Roles{AnyRole: true}
				c.Databases[1].AuthMethod = "caching_sha2_password"
			},
			want: []string{"any_role on kind mysql checks mysql_native_password"},
		},
		{
			name:   "an unknown kind lists the supported ones",
			change: func(c *config.Config) { c.Databases[0].Kind = "oracle" },
			want:   []string{`database "app": kind "oracle" is not supported (supported: postgres, mysql, d1, kv)`},
		},
		{
			name:   "an unknown auth_method lists the supported ones",
			change: func(c *config.Config) { c.Databases[0].AuthMethod = "ident" },
			want:   []string{`database "app": auth_method "ident" is not supported (supported: scram-sha-256, md5, password, trust)`},
		},
		{
			name:   "trust is refused beyond loopback",
			change: func(c *config.Config) { c.PGListen = "0.0.0.0:6432"; c.Databases[0].AuthMethod = "trust" },
			want:   []string{`database "app": auth_method trust lets anyone in, and pg_listen "0.0.0.0:6432" is not a loopback address`},
		},
		{
			name: "a d1 database has no origin",
			change: func(c *config.Config) {
				c.Databases[0].Kind = config.KindD1
				c.Databases[0].AuthMethod = "trust"
			},
			want: []string{`database "app": origin is set, but a d1 database keeps its data in path`},
		},
		{
			name: "negative limits and durations are reported",
			change: func(c *config.Config) {
				c.Databases[0].MaxConnections = -1
				c.Databases[0].QueueTimeout = dur(-time.Second)
				c.Databases[1].IdleTimeout = dur(-time.Minute)
				c.Databases[1].MaxLifetime = dur(-time.Hour)
				c.Databases[1].CatalogRefresh = dur(-time.Second)
			},
			want: []string{
				`database "app": max_connections is -1`,
				`database "app": queue_timeout is -1s`,
				`database "reports": idle_timeout is -1m0s`,
				`database "reports": max_lifetime is -1h0m0s`,
				`database "reports": catalog_refresh is -1s`,
			},
		},
		{
			name: "an empty name or user in a configuration that was not normalized is reported",
			change: func(c *config.Config) {
				c.Databases[0].Name = ""
				c.Databases[0].User = ""
			},
			want: []string{"database #1: name is empty", "database #1: user is empty"},
		},
		{
			name: "two databases with the same name report both origins without passwords",
			change: func(c *config.Config) {
				c.Databases[1].Origin = "postgres://other:" + secret + "@replica.example.com/app"
				c.Databases[1].Name = "app"
			},
			want: []string{`database #1 and database #2 are both named "app" (origins postgres://app:xxxxx@db.example.com:5432/app and postgres://other:xxxxx@replica.example.com/app)`},
		},
		{
			name: "a PostgreSQL and a MySQL database may share a name: they are on different listeners",
			change: func(c *config.Config) {
				c.Databases = append(c.Databases, config.Database{Name: "app", User: "x", Kind: "mysql", AuthMethod: "caching_sha2_password",
					Origin: "mysql://x:" + secret + "@h/shop"})
			},
		},
		{
			name: "two MySQL databases may not share a name",
			change: func(c *config.Config) {
				for _, db := range []string{"shop", "store"} {
					c.Databases = append(c.Databases, config.Database{Name: "shop", User: "x", Kind: "mysql", AuthMethod: "caching_sha2_password",
						Origin: "mysql://x:" + secret + "@h/" + db})
				}
			},
			want: []string{`database #3 and database #4 are both named "shop" (origins mysql://x:xxxxx@h/shop and mysql://x:xxxxx@h/store)`},
		},
		{
			name: "an embedded database shares both listeners: a MySQL database may not take its name",
			change: func(c *config.Config) {
				c.Databases = append(c.Databases, config.Database{Name: "notes", User: "x", Password: "y", Kind: "d1", AuthMethod: "md5", Path: "n.sqlite"},
					config.Database{Name: "notes", User: "x", Kind: "mysql", AuthMethod: "caching_sha2_password", Origin: "mysql://x:" + secret + "@h/notes"})
			},
			want: []string{`database #3 and database #4 are both named "notes"`},
		},
		{
			name: "every problem is reported together",
			change: func(c *config.Config) {
				c.PGListen = ""
				c.TLS.CertFile = "tls.crt"
				c.Databases[0].AuthMethod = "plain"
				c.Databases[1].MaxConnections = -5
				c.Databases = append(c.Databases, config.Database{Name: "app", User: "x", Kind: "postgres", AuthMethod: "md5", Origin: "postgres://x:" + secret + "@h/app"})
			},
			want: []string{
				"pg_listen is empty",
				"tls.cert_file is set",
				`database "app": auth_method "plain"`,
				`database "reports": max_connections is -5`,
				`database #1 and database #3 are both named "app"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %d problems", len(tt.want))
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate error does not contain %q:\n%v", s, err)
				}
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(tt.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", lines, len(tt.want), err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Validate error contains the password:\n%v", err)
			}
		})
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    config.Origin
		wantErr string
	}{
		{
			name: "a postgres URL without a port gets 5432",
			raw:  "postgres://app:pw@db.example.com/appdb",
			want: config.Origin{Scheme: "postgres", Host: "db.example.com", Port: 5432, User: "app", Password: "pw", Database: "appdb", Query: url.Values{}},
		},
		{
			name: "a postgresql URL with a port and sslmode",
			raw:  "postgresql://app:pw@db.example.com:6543/appdb?sslmode=verify-full&application_name=x",
			want: config.Origin{Scheme: "postgresql", Host: "db.example.com", Port: 6543, User: "app", Password: "pw", Database: "appdb",
				Query: url.Values{"sslmode": {"verify-full"}, "application_name": {"x"}}},
		},
		{
			name: "escaped user, password and database are unescaped",
			raw:  "postgres://us%40er:p%40ss%2Fw%3Ard@[::1]:5433/my%20db?sslmode=disable",
			want: config.Origin{Scheme: "postgres", Host: "::1", Port: 5433, User: "us@er", Password: "p@ss/w:rd", Database: "my db",
				Query: url.Values{"sslmode": {"disable"}}},
		},
		{
			name: "no password is allowed",
			raw:  "postgres://app@localhost/app",
			want: config.Origin{Scheme: "postgres", Host: "localhost", Port: 5432, User: "app", Database: "app", Query: url.Values{}},
		},
		{name: "an empty origin is reported", raw: "", wantErr: "origin is empty"},
		{name: "a key=value string is not a URL", raw: "host=h user=app password=" + secret, wantErr: "origin has no scheme"},
		{name: "another scheme is refused", raw: "mongodb://app:pw@h/db", wantErr: `origin scheme "mongodb" is not supported`},
		{
			name: "a mysql URL without a port gets 3306",
			raw:  "mysql://app:pw@db.example.com/appdb?tls=skip-verify",
			want: config.Origin{Scheme: "mysql", Host: "db.example.com", Port: 3306, User: "app", Password: "pw", Database: "appdb",
				Query: url.Values{"tls": {"skip-verify"}}},
		},
		{name: "an unknown mysql tls mode is refused", raw: "mysql://app:pw@h/db?tls=require", wantErr: `origin tls "require" is not one of`},
		{name: "a port out of range is refused", raw: "postgres://app:pw@h:70000/db", wantErr: "origin port 70000 is out of range"},
		{name: "an unknown sslmode is refused", raw: "postgres://app:pw@h/db?sslmode=on", wantErr: `origin sslmode "on" is not one of`},
		{name: "an unescaped slash in the password is refused without showing it", raw: "postgres://app:" + secret + "/x@h/db", wantErr: "percent-encode"},
		{name: "an opaque URL is refused without showing it", raw: "postgres:app:" + secret + "@h/db", wantErr: "not a URL with an authority"},
		{name: "a bad escape in the query is refused without showing it", raw: "postgres://app@h/db?password=" + secret + "%zz", wantErr: "origin query is not valid URL encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseOrigin(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseOrigin error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("ParseOrigin error contains the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOrigin: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOrigin:\n got %#v\nwant %#v", got, tt.want)
			}
			if s := got.String(); got.Password != "" && strings.Contains(s, got.Password) {
				t.Errorf("Origin.String() = %q shows the password", s)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"the user info password is replaced", "postgres://app:" + secret + "@h:5432/db?sslmode=require", "postgres://app:xxxxx@h:5432/db?sslmode=require"},
		{"a URL without a password is unchanged", "postgresql://app@h/db", "postgresql://app@h/db"},
		{"password parameters are replaced", "postgres://app@h/db?password=" + secret + "&sslpassword=" + secret + "&sslmode=require", "postgres://app@h/db?password=xxxxx&sslpassword=xxxxx&sslmode=require"},
		{"an escaped password is replaced whole", "postgres://app:s3cret%40pw@h/db", "postgres://app:xxxxx@h/db"},
		{"an unparsable URL loses everything between user and host", "postgres://app:" + secret + "/x@h/db", "postgres://app:xxxxx@h/db"},
		{"an opaque URL loses its password", "postgres:app:" + secret + "@h/db", "postgres:app:xxxxx@h/db"},
		{"a key=value string loses its password", "host=h password=" + secret + " user=app", "host=h password=xxxxx user=app"},
		{"a quoted key=value password is replaced", "host=h password='s3cret pw' user=app", "host=h password=xxxxx user=app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := config.RedactURL(tt.raw); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestConnString(t *testing.T) {
	db := config.Database{Name: "app", User: "app", Password: "pw"}
	tests := []struct {
		name   string
		db     config.Database
		listen string
		want   string
	}{
		{"a loopback listener is used as it is", db, "127.0.0.1:6432", "postgres://app:pw@127.0.0.1:6432/app"},
		{"a wildcard IPv4 listener becomes 127.0.0.1", db, "0.0.0.0:6432", "postgres://app:pw@127.0.0.1:6432/app"},
		{"a listener without a host becomes 127.0.0.1", db, ":7000", "postgres://app:pw@127.0.0.1:7000/app"},
		{"a wildcard IPv6 listener becomes [::1]", db, "[::]:6432", "postgres://app:pw@[::1]:6432/app"},
		{"a host name is kept", db, "proxy.internal:6432", "postgres://app:pw@proxy.internal:6432/app"},
		{"no password leaves no colon", config.Database{Name: "app", User: "app"}, "127.0.0.1:6432", "postgres://app@127.0.0.1:6432/app"},
		{"a mysql database gets a mysql URL", config.Database{Name: "app", User: "app", Password: "pw", Kind: "mysql"}, "127.0.0.1:3307", "mysql://app:pw@127.0.0.1:3307/app"},
		{
			"special characters in user, password and name are escaped",
			config.Database{Name: "my db/x", User: "us@er", Password: "p@ss:w/rd?#% &"},
			"127.0.0.1:6432",
			"postgres://us%40er:p%40ss%3Aw%2Frd%3F%23%25%20&@127.0.0.1:6432/my%20db%2Fx",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.db.ConnString(tt.listen)
			if got != tt.want {
				t.Errorf("ConnString(%q) = %q, want %q", tt.listen, got, tt.want)
			}
			// What a driver reads back must be what the database expects.
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("ConnString result does not parse: %v", err)
			}
			pw, _ := u.User.Password()
			if u.User.Username() != tt.db.User || pw != tt.db.Password || strings.TrimPrefix(u.Path, "/") != tt.db.Name {
				t.Errorf("ConnString round trip: user %q password %q database %q, want %q %q %q",
					u.User.Username(), pw, strings.TrimPrefix(u.Path, "/"), tt.db.User, tt.db.Password, tt.db.Name)
			}
			if u.RawQuery != "" {
				t.Errorf("ConnString has query %q; sslmode is the client's choice", u.RawQuery)
			}
		})
	}
}

func TestMergeOrigins(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		want    []config.Database // before Normalize
	}{
		{
			name: "no origins leave the file as it is",
			want: []config.Database{
				{Origin: "postgres://app:file-pw@file.example.com/app", User: "client", MaxConnections: 7},
				{Origin: "postgres://reports:file-pw@file.example.com/reports"},
			},
		},
		{
			name:    "an origin for a database in the file replaces its origin and keeps its settings; others are added",
			origins: []string{"postgres://app:flag-pw@flag.example.com/app", "postgres://m:flag-pw@flag.example.com/metrics"},
			want: []config.Database{
				{Origin: "postgres://app:flag-pw@flag.example.com/app", User: "client", MaxConnections: 7},
				{Origin: "postgres://reports:file-pw@file.example.com/reports"},
				{Origin: "postgres://m:flag-pw@flag.example.com/metrics"},
			},
		},
		{
			name:    "two origins with one name are both kept for Validate to report",
			origins: []string{"postgres://app:flag-pw@a.example.com/app", "postgres://app:flag-pw@b.example.com/app"},
			want: []config.Database{
				{Origin: "postgres://app:flag-pw@a.example.com/app", User: "client", MaxConnections: 7},
				{Origin: "postgres://reports:file-pw@file.example.com/reports"},
				{Origin: "postgres://app:flag-pw@b.example.com/app"},
			},
		},
		{
			name:    "NAME= names an origin's database, and replaces the file's database of that name",
			origins: []string{"reports=postgres://r:flag-pw@flag.example.com/warehouse", "metrics=postgres://m:flag-pw@flag.example.com/m?sslmode=require"},
			want: []config.Database{
				{Origin: "postgres://app:file-pw@file.example.com/app", User: "client", MaxConnections: 7},
				{Name: "reports", Origin: "postgres://r:flag-pw@flag.example.com/warehouse"},
				{Name: "metrics", Origin: "postgres://m:flag-pw@flag.example.com/m?sslmode=require"},
			},
		},
		{
			name:    "a mysql:// origin does not replace a PostgreSQL database of its name: it is added beside it",
			origins: []string{"mysql://app:flag-pw@flag.example.com/app", "app=mysql://shop:flag-pw@flag.example.com/shop"},
			want: []config.Database{
				{Origin: "postgres://app:file-pw@file.example.com/app", User: "client", MaxConnections: 7},
				{Origin: "postgres://reports:file-pw@file.example.com/reports"},
				{Origin: "mysql://app:flag-pw@flag.example.com/app"},
				{Name: "app", Origin: "mysql://shop:flag-pw@flag.example.com/shop"},
			},
		},
		{
			name:    "an origin that does not parse is added for Validate to report",
			origins: []string{"nonsense"},
			want: []config.Database{
				{Origin: "postgres://app:file-pw@file.example.com/app", User: "client", MaxConnections: 7},
				{Origin: "postgres://reports:file-pw@file.example.com/reports"},
				{Origin: "nonsense"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load("testdata/priority.toml")
			if err != nil {
				t.Fatal(err)
			}
			c.MergeOrigins(tt.origins)
			if !reflect.DeepEqual(c.Databases, tt.want) {
				t.Errorf("MergeOrigins:\n got %#v\nwant %#v", c.Databases, tt.want)
			}
		})
	}
}

// TestPriority is the config half of the rule "flags over the file, the file over defaults";
// cmd/slipstream's flags_test.go checks the same file through parseServe.
func TestPriority(t *testing.T) {
	c, err := config.Load("testdata/priority.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.PGListen = "127.0.0.1:8432" // what a --pg-listen flag does
	c.MergeOrigins([]string{"postgres://app:flag-pw@flag.example.com/app"})
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.PGListen != "127.0.0.1:8432" || c.HTTPListen != "127.0.0.1:7433" || c.DataDir != "./slipstream-data" {
		t.Errorf("listen %q, http %q, data dir %q: want the flag's, the file's and the default", c.PGListen, c.HTTPListen, c.DataDir)
	}
	app := c.Databases[0]
	if app.Name != "app" || app.User != "client" || app.Password != "flag-pw" || app.MaxConnections != 7 {
		t.Errorf("app = %#v: want the file's user and limit with the flag origin's password", app)
	}
}

func TestSecretsStayOutOfPrintedForms(t *testing.T) {
	c, err := config.Load("testdata/two-databases.toml")
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	var logged bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&logged, nil), slog.NewTextHandler(&logged, nil)} {
		slog.New(h).Info("serving", "db", c.Databases[0], "config", c)
	}
	printed := map[string]string{
		"Database.String":    c.Databases[0].String(),
		"fmt %v of a Config": fmt.Sprintf("%v", c),
		"fmt %+v of Config":  fmt.Sprintf("%+v", c),
		"slog":               logged.String(),
	}
	for what, s := range printed {
		if strings.Contains(s, secret) || strings.Contains(s, "client-pw") {
			t.Errorf("%s shows a password: %s", what, s)
		}
	}
	if want := "app (postgres://app:xxxxx@db.example.com:5432/app?sslmode=verify-full)"; c.Databases[0].String() != want {
		t.Errorf("Database.String() = %q, want %q", c.Databases[0].String(), want)
	}
}

func TestDurationUnmarshalText(t *testing.T) {
	tests := []struct {
		text    string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"1h30m", 90 * time.Minute, false},
		{"-5s", -5 * time.Second, false}, // Validate reports it, naming the setting
		{"30", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var d config.Duration
			err := d.UnmarshalText([]byte(tt.text))
			if (err != nil) != tt.wantErr || d.Duration != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v, error %v", tt.text, d.Duration, err, tt.want, tt.wantErr)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSplitOriginFlag(t *testing.T) {
	tests := []struct{ in, name, origin string }{
		{"postgres://app:pw@h/app?sslmode=require", "", "postgres://app:pw@h/app?sslmode=require"},
		{"bench=postgres://app:pw@h/app?sslmode=require", "bench", "postgres://app:pw@h/app?sslmode=require"},
		{"bench=mysql://app:pw@h/app", "bench", "mysql://app:pw@h/app"},
		{"nonsense", "", "nonsense"},
	}
	for _, tt := range tests {
		name, origin := config.SplitOriginFlag(tt.in)
		if name != tt.name || origin != tt.origin {
			t.Errorf("SplitOriginFlag(%q) = %q, %q; want %q, %q", tt.in, name, origin, tt.name, tt.origin)
		}
	}
}

func TestTunnelNameTellsAMySQLDatabaseFromAPostgreSQLOneOfItsName(t *testing.T) {
	c := config.Config{}
	c.MergeOrigins([]string{"bench=postgres://a:pw@h/a", "bench=mysql://b:pw@h/b", "mysql://shop:pw@h/shop"})
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range c.Databases {
		got = append(got, c.TunnelName(d))
	}
	if want := []string{"bench", "bench#mysql", "shop"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tunnel names %q, want %q", got, want)
	}
}

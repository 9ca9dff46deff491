package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/slipstream-proxy/slipstream/config"
)

// priorityFile is shared with the config package's own priority test.
const priorityFile = "../../../config/testdata/priority.toml"

// secretPW is a password that must never show in an error or in the usage.
const secretPW = "s3cret-pw"

func TestParseServe(t *testing.T) {
	tests := []struct {
		name  string
		env   string // SLIPSTREAM_CONFIG
		args  []string
		check func(t *testing.T, c config.Config)
	}{
		{
			name: "no flags and no file give the defaults and the embedded D1 database",
			check: func(t *testing.T, c config.Config) {
				want := config.Default()
				if c.PGListen != want.PGListen || c.HTTPListen != want.HTTPListen || c.DataDir != want.DataDir {
					t.Errorf("got %+v, want %+v", c, want)
				}
				wantNames(t, c, "main")
				if d := c.Databases[0]; d.Kind != config.KindD1 || d.AuthMethod != "trust" || d.Path != "slipstream-data/d1/main.sqlite" {
					t.Errorf("default database %+v, want d1 main in the data dir, open to local clients", d)
				}
			},
		},
		{
			name: "flags override the file and the file overrides the defaults",
			args: []string{
				"--config", priorityFile,
				"--pg-listen", "127.0.0.1:8432",
				"--origin", "postgres://app:flag-pw@flag.example.com/app",
				"--origin", "postgres://m:flag-pw@flag.example.com/metrics",
			},
			check: func(t *testing.T, c config.Config) {
				if c.PGListen != "127.0.0.1:8432" || c.HTTPListen != "127.0.0.1:7433" || c.DataDir != "./slipstream-data" {
					t.Errorf("pg_listen %q, http_listen %q, data_dir %q: want the flag's, the file's and the default",
						c.PGListen, c.HTTPListen, c.DataDir)
				}
				wantNames(t, c, "app", "reports", "metrics")
				app := c.Databases[0]
				if app.OriginURL() != "postgres://app:flag-pw@flag.example.com/app" || app.User != "client" || app.Password != "flag-pw" || app.MaxConnections != 7 {
					t.Errorf("app = %v user %q max_connections %d: want the flag's origin and password with the file's user and limit",
						app, app.User, app.MaxConnections)
				}
			},
		},
		{
			name: "flags left at their defaults do not hide the file's settings",
			args: []string{"--config", priorityFile},
			check: func(t *testing.T, c config.Config) {
				if c.PGListen != "127.0.0.1:7432" || c.HTTPListen != "127.0.0.1:7433" {
					t.Errorf("pg_listen %q, http_listen %q: want the file's", c.PGListen, c.HTTPListen)
				}
			},
		},
		{
			name: "a mysql:// origin is a kind mysql database, served on --mysql-listen",
			args: []string{"--origin", "mysql://shop:pw@mysql.example.com/shop", "--mysql-listen", "127.0.0.1:3400"},
			check: func(t *testing.T, c config.Config) {
				wantNames(t, c, "shop")
				if d := c.Databases[0]; d.Kind != config.KindMySQL || d.AuthMethod != "caching_sha2_password" || c.MySQLListen != "127.0.0.1:3400" {
					t.Errorf("database %+v on mysql_listen %q: want kind mysql with caching_sha2_password on the flag's address", d, c.MySQLListen)
				}
			},
		},
		{
			name: "SLIPSTREAM_CONFIG names the file when --config is not given",
			env:  priorityFile,
			check: func(t *testing.T, c config.Config) {
				if c.PGListen != "127.0.0.1:7432" {
					t.Errorf("pg_listen %q: want the file's", c.PGListen)
				}
				wantNames(t, c, "app", "reports")
			},
		},
		{
			name: "an empty --config reads no file even when SLIPSTREAM_CONFIG is set",
			env:  priorityFile,
			args: []string{"--config", ""},
			check: func(t *testing.T, c config.Config) {
				if c.PGListen != config.Default().PGListen || len(c.Databases) != 1 || c.Databases[0].Kind != config.KindD1 {
					t.Errorf("got %+v, want the defaults", c)
				}
			},
		},
		{
			name: "each repeated --origin adds a database named after it",
			args: []string{
				"-origin", "postgres://app:pw@db.example.com/app",
				"--origin=postgresql://reader:pw@replica.example.com:5433/reports?sslmode=require",
				"--http-listen", "127.0.0.1:0", "--data-dir", "/tmp/slipstream",
			},
			check: func(t *testing.T, c config.Config) {
				wantNames(t, c, "app", "reports")
				if c.Databases[1].User != "reader" || c.HTTPListen != "127.0.0.1:0" || c.DataDir != "/tmp/slipstream" {
					t.Errorf("got %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(configEnv, tt.env)
			var stderr bytes.Buffer
			c, err := parseServe(tt.args, &stderr)
			if err != nil {
				t.Fatalf("parseServe(%q): %v", tt.args, err)
			}
			if stderr.Len() > 0 {
				t.Errorf("parseServe wrote to stderr: %s", stderr.String())
			}
			tt.check(t, c)
		})
	}
}

func TestParseServeErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantIs     error
		wantErr    []string // substrings of the error
		wantStderr []string // substrings of what went to stderr
	}{
		{
			name:   "--help prints the usage with every flag and an example",
			args:   []string{"--help"},
			wantIs: flag.ErrHelp,
			wantStderr: []string{
				"Usage: slipstream serve [flags]",
				"slipstream serve --origin postgres://app:secret@db.example.com:5432/app",
				"--config FILE", "--origin [NAME=]URL", "--pg-listen ADDR", "--mysql-listen ADDR", "--http-listen ADDR", "--data-dir DIR",
				"(default 127.0.0.1:6432)", "(default 127.0.0.1:3307)", "(default 127.0.0.1:9432)", "(default ./slipstream-data)",
				"mysql://USER:PASSWORD@HOST:PORT/DB",
				"SLIPSTREAM_CONFIG",
			},
		},
		{
			name:       "an unknown flag is an error and prints the usage",
			args:       []string{"--listen", "x"},
			wantErr:    []string{"flag provided but not defined: -listen"},
			wantStderr: []string{"Usage: slipstream serve"},
		},
		{
			name:    "an origin given without --origin is an error that hides its password",
			args:    []string{"postgres://app:" + secretPW + "@db.example.com/app"},
			wantErr: []string{`unexpected argument "postgres://app:xxxxx@db.example.com/app"`, "--origin URL"},
		},
		{
			name:    "an empty --pg-listen is an error rather than the default",
			args:    []string{"--pg-listen", ""},
			wantErr: []string{"--pg-listen is empty"},
		},
		{
			name:    "a missing config file is an error naming it",
			args:    []string{"--config", "testdata-missing.toml"},
			wantIs:  fs.ErrNotExist,
			wantErr: []string{"testdata-missing.toml"},
		},
		{
			name: "every problem of the file and the flags is reported together, without passwords",
			args: []string{
				"--config", priorityFile,
				"--http-listen", "127.0.0.1:7432", // the file's pg_listen
				"--origin", "mongodb://app:" + secretPW + "@db.example.com/app",
				"--origin", "postgres://app:" + secretPW + "@db.example.com:70000/reports",
			},
			wantErr: []string{
				"priority.toml",
				`pg_listen and http_listen are both "127.0.0.1:7432"`,
				`database #3: origin scheme "mongodb" is not supported`,
				`database "reports": origin port 70000 is out of range`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(configEnv, "")
			var stderr bytes.Buffer
			_, err := parseServe(tt.args, &stderr)
			if err == nil {
				t.Fatalf("parseServe(%q) succeeded, want an error", tt.args)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not contain %q:\n%v", s, err)
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr does not contain %q:\n%s", s, stderr.String())
				}
			}
			if strings.Contains(err.Error()+stderr.String(), secretPW) {
				t.Errorf("a password reached the error or stderr:\n%v\n%s", err, stderr.String())
			}
		})
	}
}

func wantNames(t *testing.T, c config.Config, names ...string) {
	t.Helper()
	var got []string
	for _, d := range c.Databases {
		got = append(got, d.Name)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("databases %q, want %q", got, names)
	}
}

func TestParseEdgeAndPool(t *testing.T) {
	t.Setenv(configEnv, "")
	origin := "--origin=postgres://app:" + secretPW + "@db.example.com/app"
	var stderr bytes.Buffer
	c, err := parseEdge([]string{"--pool", "us=pool.example.com:7432", "--certs", "/c", origin}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 1 || c.Pools[0] != (config.Pool{Name: "us", Address: "pool.example.com:7432"}) || c.CertsDir != "/c" {
		t.Errorf("edge configuration: pools %v, certs %q", c.Pools, c.CertsDir)
	}
	c, err = parsePool([]string{"--tunnel-listen", "0.0.0.0:7432", "--region", "us", "--dial-edge", "edge:7433", origin}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.TunnelListen != "0.0.0.0:7432" || c.Region != "us" || c.HTTPListen != "127.0.0.1:9433" || len(c.DialEdges) != 1 {
		t.Errorf("pool configuration: %+v", c)
	}
	if c.PGListen != "127.0.0.1:6433" {
		t.Errorf("pool pg_listen %q: want the console's default beside an edge's, 127.0.0.1:6433", c.PGListen)
	}
	if c.Cache.Disabled || c.Cache.MaxBytes != 256<<20 {
		t.Errorf("pool cache: %+v, want one of 256 MiB by default", c.Cache)
	}
	if c, err = parsePool([]string{"--tunnel-listen", "0.0.0.0:7432", "--no-cache", origin}, &stderr); err != nil || !c.Cache.Disabled {
		t.Errorf("pool --no-cache: %+v, %v; want the pool's cache disabled", c.Cache, err)
	}
	for _, tt := range []struct {
		name    string
		parse   func([]string, io.Writer) (config.Config, error)
		args    []string
		wantErr string
	}{
		{"an edge without a pool is refused", parseEdge, []string{origin}, "no pool"},
		{"a pool without a tunnel is refused", parsePool, []string{origin}, "tunnel_listen is empty"},
		{"a --pool without a name is a flag error", parseEdge, []string{"--pool", "pool.example.com:7432", origin}, "NAME=ADDR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := tt.parse(tt.args, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.wantErr) {
				t.Errorf("error %v (stderr %q), want %q", err, stderr.String(), tt.wantErr)
			}
			if strings.Contains(err.Error()+stderr.String(), secretPW) {
				t.Error("a password reached the error or stderr")
			}
		})
	}
}

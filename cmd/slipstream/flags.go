package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slipstream-proxy/slipstream/config"
)

// configEnv names the environment variable that is the default of --config.
const configEnv = "SLIPSTREAM_CONFIG"

const serveUsageHead = `Usage: slipstream serve [flags]

Serve runs Slipstream in one process. Clients connect to --pg-listen instead of
to the database, with the origin's user, password and database name, and
Slipstream forwards their queries to the origin.

Example:

  slipstream serve --origin postgres://app:secret@db.example.com:5432/app

then point the application at postgres://app:secret@127.0.0.1:6432/app. A
mysql:// origin is served the same way on --mysql-listen:

  slipstream serve --origin mysql://shop:secret@mysql.example.com:3306/shop

With no --origin and no --config file, serve runs an embedded SQLite database
(D1) named main in DATA_DIR/d1, open to local clients without a password:

  psql postgres://slipstream@127.0.0.1:6432/main
  mysql -h 127.0.0.1 -P 3307 -u slipstream main

Settings come from the flags given on the command line, then the --config
file, then the defaults shown below, in that order of priority.

Flags:
`

const serveUsageTail = `
Environment:
  ` + configEnv + `
    	the default of --config
`

// parseServe turns the arguments of `slipstream serve` into a normalized, validated
// configuration. Each setting comes from the first of: a flag given on the command line, the
// TOML file named by --config (default $SLIPSTREAM_CONFIG; --config "" reads no file), and
// config.Default. Each --origin adds a database, except that an origin whose database is
// already in the file replaces that database's origin (config.Config.MergeOrigins).
//
// Usage and flag syntax errors go to stderr. For -h or --help it returns flag.ErrHelp (the
// caller exits 0); for a malformed flag, the flag package's error after printing it with
// the usage (exit 2); otherwise an error listing every problem of the file and flags
// together, with no password in it.
func parseServe(args []string, stderr io.Writer) (config.Config, error) {
	def := config.Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var origins originFlags
	path := fs.String("config", os.Getenv(configEnv),
		"read settings from the TOML `FILE`; the flags given here override it")
	fs.Var(&origins, "origin",
		"serve the PostgreSQL database at `URL`, postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...,\n"+
			"or the MySQL/MariaDB database at mysql://USER:PASSWORD@HOST:PORT/DB?tls=...;\n"+
			"repeat for more databases. An origin for a database already in the --config file\n"+
			"replaces that database's origin")
	fs.String("pg-listen", def.PGListen, "accept PostgreSQL clients on `ADDR` (host:port)")
	fs.String("mysql-listen", def.MySQLListen, "accept MySQL clients on `ADDR` (host:port), when a database is a mysql:// one")
	fs.String("http-listen", def.HTTPListen, "serve /metrics and /healthz on `ADDR` (host:port)")
	fs.String("api-token", "", "bearer `TOKEN` of the D1 and KV HTTP APIs on --http-listen (default $SLIPSTREAM_API_TOKEN; empty: those APIs answer 403)")
	fs.String("data-dir", def.DataDir, "keep state in `DIR`, such as the self-signed TLS certificate in DIR/tls")
	fs.Usage = func() { printServeUsage(fs) }

	if err := fs.Parse(args); err != nil {
		return config.Config{}, flagSyntaxError{err}
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected argument %q: serve takes only flags, such as --origin URL",
			config.RedactURL(fs.Arg(0)))
	}

	var cfg config.Config
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			return config.Config{}, err
		}
	}
	// Only the flags given override the file: a flag left at its default must not hide
	// the file's setting.
	var problems []error
	fs.Visit(func(f *flag.Flag) {
		var field *string
		switch f.Name {
		case "pg-listen":
			field = &cfg.PGListen
		case "mysql-listen":
			field = &cfg.MySQLListen
		case "http-listen":
			field = &cfg.HTTPListen
		case "data-dir":
			field = &cfg.DataDir
		case "api-token":
			cfg.APIToken = f.Value.String()
			return
		default:
			return
		}
		// An empty value would quietly become the default; it is more likely an unset
		// shell variable.
		if f.Value.String() == "" {
			problems = append(problems, fmt.Errorf("--%s is empty", f.Name))
		}
		*field = f.Value.String()
	})
	if cfg.APIToken == "" {
		cfg.APIToken = os.Getenv("SLIPSTREAM_API_TOKEN")
	}
	cfg.MergeOrigins(origins)
	if len(cfg.Databases) == 0 {
		// Nothing to proxy: serve the embedded D1 database, so a fresh machine has something
		// psql can talk to.
		cfg.Databases = []config.Database{config.EmbeddedDefault()}
	}
	cfg.Normalize()
	if err := errors.Join(append(problems, cfg.Validate())...); err != nil {
		if *path != "" {
			return config.Config{}, fmt.Errorf("invalid configuration (flags and %s):\n%w", *path, err)
		}
		return config.Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// printServeUsage writes the help of `slipstream serve`, with flags spelled as --name.
func printServeUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, serveUsageHead)
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n    \t%s", f.Name, arg, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprint(w, serveUsageTail)
}

// originFlags collects repeated --origin flags in order.
type originFlags []string

// String shows the origins without passwords; the flag package prints it as a default.
func (o *originFlags) String() string {
	redacted := make([]string, len(*o))
	for i, u := range *o {
		redacted[i] = config.RedactURL(u)
	}
	return strings.Join(redacted, ", ")
}

func (o *originFlags) Set(u string) error {
	*o = append(*o, u)
	return nil
}

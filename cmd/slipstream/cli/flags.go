package cli

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

const usageTail = `
Environment:
  Every flag can also be set by an environment variable named SLIPSTREAM_ and the
  flag's name in capitals with - as _: SLIPSTREAM_PG_LISTEN for --pg-listen,
  SLIPSTREAM_ORIGIN for --origin (several URLs separated by spaces). A flag given
  on the command line wins over its variable, which wins over the --config file.
  ` + configEnv + `
    	the default of --config
`

// command is what one command adds to the flags every command shares (--config, --origin,
// --http-listen, --data-dir): its usage text, its own flags and its validation.
type command struct {
	name string
	head string // the usage before the flags
	// flags defines the command's own flags; def holds the defaults to show.
	flags func(fs *flag.FlagSet, def config.Config)
	// set applies one of the command's own flags that is not a plain string setting (those
	// are in stringFlags), given on the command line, to cfg.
	set func(f *flag.Flag, cfg *config.Config)
	// embeddedDefault serves the embedded D1 database when no database is configured.
	embeddedDefault bool
	// defaults, when set, fills settings the file and the flags left empty, before
	// config.Config.Normalize puts the process-wide defaults in place.
	defaults func(cfg *config.Config)
	// validate checks the normalized configuration; nil means config.Config.Validate.
	validate func(config.Config) error
}

// parseServe turns the arguments of `slipstream serve` into a normalized, validated
// configuration; see parseCommand.
func parseServe(args []string, stderr io.Writer) (config.Config, error) {
	return parseCommand(command{
		name: "serve",
		head: serveUsageHead,
		flags: func(fs *flag.FlagSet, def config.Config) {
			fs.String("pg-listen", def.PGListen, "accept PostgreSQL clients on `ADDR` (host:port)")
			fs.String("mysql-listen", def.MySQLListen, "accept MySQL clients on `ADDR` (host:port), for mysql:// databases and the embedded ones")
			fs.String("api-token", "", "bearer `TOKEN` of the D1 and KV HTTP APIs on --http-listen (default $SLIPSTREAM_API_TOKEN; empty: those APIs answer 403)")
		},
		set: func(f *flag.Flag, cfg *config.Config) {
			if f.Name == "api-token" {
				cfg.APIToken = f.Value.String()
			}
		},
		embeddedDefault: true,
	}, args, stderr)
}

// parseCommand turns a command's arguments into a normalized, validated configuration. Each
// setting comes from the first of: a flag given on the command line, the TOML file named by
// --config (default $SLIPSTREAM_CONFIG; --config "" reads no file), and config.Default. Each
// --origin adds a database, except that an origin whose database is already in the file
// replaces that database's origin (config.Config.MergeOrigins).
//
// Usage and flag syntax errors go to stderr. For -h or --help it returns flag.ErrHelp (the
// caller exits 0); for a malformed flag, the flag package's error after printing it with
// the usage (exit 2); otherwise an error listing every problem of the file and flags
// together, with no password in it.
func parseCommand(cmd command, args []string, stderr io.Writer) (config.Config, error) {
	def := config.Default()
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var origins originFlags
	path := fs.String("config", os.Getenv(configEnv),
		"read settings from the TOML `FILE`; the flags given here override it")
	fs.Var(&origins, "origin",
		"serve the database at `[NAME=]URL`, PostgreSQL at postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...\n"+
			"or MySQL/MariaDB at mysql://USER:PASSWORD@HOST:PORT/DB?tls=..., to clients as NAME\n"+
			"(default: DB; a PostgreSQL and a MySQL database may share a name);\n"+
			"repeat for more databases. An origin for a database already in the --config file\n"+
			"replaces that database's origin")
	fs.String("http-listen", def.HTTPListen, "serve /metrics and /healthz on `ADDR` (host:port)")
	fs.String("data-dir", def.DataDir, "keep state in `DIR`, such as the self-signed TLS certificate in DIR/tls")
	cmd.flags(fs, def)
	fs.Usage = func() { printUsage(fs, cmd.head) }

	if err := fs.Parse(args); err != nil {
		return config.Config{}, flagSyntaxError{err}
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("unexpected argument %q: %s takes only flags, such as --origin URL",
			config.RedactURL(fs.Arg(0)), cmd.name)
	}
	if err := flagsFromEnv(fs, os.LookupEnv); err != nil {
		return config.Config{}, err
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
	fields := stringFlags(&cfg)
	fs.Visit(func(f *flag.Flag) {
		field, ok := fields[f.Name]
		if !ok {
			if cmd.set != nil && f.Name != "config" && f.Name != "origin" {
				cmd.set(f, &cfg)
			}
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
	if len(cfg.Databases) == 0 && cmd.embeddedDefault {
		// Nothing to proxy: serve the embedded D1 database, so a fresh machine has something
		// psql can talk to.
		cfg.Databases = []config.Database{config.EmbeddedDefault()}
	}
	if cmd.defaults != nil {
		cmd.defaults(&cfg)
	}
	if err := cfg.ReadSecretFiles(); err != nil {
		problems = append(problems, err)
	}
	cfg.Normalize()
	validate := cmd.validate
	if validate == nil {
		validate = config.Config.Validate
	}
	if err := errors.Join(append(problems, validate(cfg))...); err != nil {
		if *path != "" {
			return config.Config{}, fmt.Errorf("invalid configuration (flags and %s):\n%w", *path, err)
		}
		return config.Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// stringFlags are the flags that each set one string of cfg, by name, whichever commands
// define them.
func stringFlags(cfg *config.Config) map[string]*string {
	return map[string]*string{
		"http-listen":   &cfg.HTTPListen,
		"data-dir":      &cfg.DataDir,
		"pg-listen":     &cfg.PGListen,
		"mysql-listen":  &cfg.MySQLListen,
		"certs":         &cfg.CertsDir,
		"tunnel-listen": &cfg.TunnelListen,
		"region":        &cfg.Region,
	}
}

// printUsage writes the help of a command, with flags spelled as --name.
func printUsage(fs *flag.FlagSet, head string) {
	w := fs.Output()
	fmt.Fprint(w, head)
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s\n    \t%s", f.Name, arg, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" { // a switch is off unless given
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprint(w, usageTail)
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

// listFlag collects a repeated flag's values in order.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ", ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

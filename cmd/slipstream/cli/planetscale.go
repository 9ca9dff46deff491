package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/planetscale"
	"github.com/slipstream-proxy/slipstream/pool"
)

// Environment variables of the PlanetScale integration.
const (
	envPSTokenID = "PLANETSCALE_SERVICE_TOKEN_ID"
	envPSToken   = "PLANETSCALE_SERVICE_TOKEN"
	envPSAPIURL  = "PLANETSCALE_API_URL" // the API's base URL, for tests; default planetscale.DefaultBaseURL
)

// startupError is a problem found while starting that the configuration or the environment
// caused (a refused token, an unknown branch): the command exits 2, as for a bad flag.
type startupError struct{ error }

func (e startupError) Unwrap() error { return e.error }

// psToken reads the service token of a database: its service_token_file, or the environment.
func psToken(file string) (planetscale.Token, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return planetscale.Token{}, fmt.Errorf("service_token_file: %w", err) // the *PathError names the file, not its content
		}
		tok, err := planetscale.ParseToken(string(b))
		if err != nil {
			return planetscale.Token{}, fmt.Errorf("service_token_file %s: %w", file, err)
		}
		return tok, nil
	}
	id, secret := os.Getenv(envPSTokenID), os.Getenv(envPSToken)
	if id == "" || secret == "" {
		return planetscale.Token{}, fmt.Errorf("no PlanetScale service token: set %s and %s, or service_token_file", envPSTokenID, envPSToken)
	}
	return planetscale.Token{ID: id, Secret: secret}, nil
}

func psClient(tokenFile string) (*planetscale.Client, error) {
	tok, err := psToken(tokenFile)
	if err != nil {
		return nil, err
	}
	return &planetscale.Client{BaseURL: os.Getenv(envPSAPIURL), Token: tok}, nil
}

// planetScales are the rotators of the PlanetScale databases of one process.
type planetScales struct {
	rotators map[string]*planetscale.Rotator // by database name
	reps     psReplicas                      // replica reads (psreplica.go)
	apis     map[string]psAPI                // by database name
	metrics  *planetscale.Metrics
	log      *slog.Logger
	replaced []*planetscale.Rotator // of databases whose origin a reload changed: deleted at shutdown
}

// psAPI is how a database's credentials are minted: the client of its token and its branch.
type psAPI struct {
	client *planetscale.Client
	target planetscale.Target
	// raw is the database as configured (its planetscale:// origin), resolved as start made it:
	// a reload that configures raw again gets resolved (psreload.go).
	raw, resolved config.Database
}

// credentials returns the credential source of database name, nil for a database that is not
// a PlanetScale one.
func (ps *planetScales) credentials(name string) pool.CredentialSource {
	if r := ps.rotators[name]; r != nil {
		return r.Source
	}
	return nil
}

// startPlanetScale resolves every planetscale:// database of cfg through the API (the
// organization, database and branch exist; the kind), mints its first credential, and
// rewrites its origin to the branch's host with TLS verified against the system roots and no
// password: the pool takes the credentials from the rotator. Errors are startupErrors.
func startPlanetScale(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (ps *planetScales, err error) {
	ps = &planetScales{rotators: map[string]*planetscale.Rotator{}, apis: map[string]psAPI{}, log: log,
		reps: psReplicas{attached: map[string]*psReplica{}, detached: map[*psReplica]bool{}, done: make(chan struct{})}}
	started := ps // the returns below set ps to nil
	defer func() {
		if err != nil {
			started.close() // the credentials minted before the failure
		}
	}()
	for i := range cfg.Databases {
		if cfg.Databases[i].IsPlanetScale() {
			if err := ps.start(ctx, &cfg.Databases[i], reg); err != nil {
				return nil, startupError{err}
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, startupError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	return ps, nil
}

// start resolves the planetscale:// database d through the API (the organization, database and
// branch exist; the kind), mints its first credential, and rewrites d's origin to the branch's
// host with TLS verified against the system roots and no password: the pool takes the
// credentials from the rotator. A database started before under the same name (a reload that
// changed its origin) keeps its rotator for the pool still using it, until shutdown.
func (ps *planetScales) start(ctx context.Context, d *config.Database, reg prometheus.Registerer) error {
	if ps.metrics == nil {
		ps.metrics = planetscale.NewMetrics(reg)
	}
	o, err := config.ParsePlanetScaleOrigin(d.Origin)
	if err != nil {
		return fmt.Errorf("database %s: %w", d.Name, err)
	}
	c, err := psClient(d.ServiceTokenFile)
	if err != nil {
		return fmt.Errorf("database %s: %w", d.Name, err)
	}
	raw := *d
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	target, err := c.Resolve(rctx, planetscale.Target{Org: o.Org, Database: o.Database, Branch: o.Branch})
	if err != nil {
		return fmt.Errorf("database %s (%s): %w", d.Name, o, err)
	}
	r, err := planetscale.StartRotator(rctx, planetscale.RotatorConfig{Client: c, Target: target, DB: d.Name, Role: o.Role,
		TTL: d.CredentialTTL.Duration, Logger: ps.log, Metrics: ps.metrics})
	if err != nil {
		return fmt.Errorf("database %s (%s): %w", d.Name, o, err)
	}
	if old := ps.rotators[d.Name]; old != nil {
		ps.replaced = append(ps.replaced, old)
	}
	ps.rotators[d.Name] = r
	d.SetPlanetScaleKind(target.Kind)
	d.Origin = psOriginURL(target.Kind, r.Current())
	// Minted credentials read no change stream (Vitess has no binlog for them, and the
	// credential rotates): PlanetScale databases are invalidated by max_age (issue 16).
	d.Invalidation = config.InvalidationTTL
	ps.apis[d.Name] = psAPI{client: c, target: target, raw: raw, resolved: *d}
	ps.log.Info("planetscale branch resolved", "db", d.Name, "branch", target.String(), "kind", target.Kind, "host", r.Current().Host)
	return nil
}

// psOriginURL is the origin URL of a PlanetScale branch for the pool: its host, database and
// user, TLS verified (verify-full, tls=true), no password.
func psOriginURL(kind string, c planetscale.Credential) string {
	u := url.URL{Host: c.Host, User: url.User(c.Username), Path: "/" + c.Database}
	if kind == planetscale.KindPostgres {
		u.Scheme, u.RawQuery = "postgres", "sslmode=verify-full"
	} else {
		u.Scheme, u.RawQuery = "mysql", "tls=true"
	}
	return u.String()
}

// close deletes every credential minted; call it after the pools have closed.
func (ps *planetScales) close() {
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps.closeReplicas(ctx)
	for _, r := range ps.replaced {
		if err := r.Close(ctx); err != nil {
			ps.log.Warn("planetscale: deleting minted credentials failed; they expire by themselves", "err", err)
		}
	}
	for name, r := range ps.rotators {
		if err := r.Close(ctx); err != nil {
			ps.log.Warn("planetscale: deleting minted credentials failed; they expire by themselves", "db", name, "err", err)
		}
	}
}

const planetscaleUsage = `Usage: slipstream planetscale <command> [flags]

Commands:
  databases ORG                 list the databases of organization ORG and their kind
  branches ORG/DATABASE         list the branches of a database
  check ORG/DATABASE/BRANCH     mint a short-lived credential, connect with it over
                                verified TLS, run SELECT 1, delete it, and say what it did

The service token comes from $PLANETSCALE_SERVICE_TOKEN_ID and $PLANETSCALE_SERVICE_TOKEN
(or --service-token-file FILE holding ID:TOKEN).
`

// runPlanetScale is `slipstream planetscale`: 0 done, 1 the check failed, 2 a usage error or
// the API refused (unknown organization, database or branch; a refused token).
func runPlanetScale(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, planetscaleUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fs := flag.NewFlagSet("planetscale "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokenFile := fs.String("service-token-file", "", "read the service token (ID:TOKEN) from `FILE` instead of the environment")
	role := fs.String("role", planetscale.RoleReader, "check: the `ROLE` of the credential minted (reader, writer, readwriter, admin)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	want := map[string]int{"databases": 1, "branches": 2, "check": 3}[args[0]]
	var parts []string
	if fs.NArg() == 1 {
		parts = strings.Split(fs.Arg(0), "/")
	}
	if want == 0 || len(parts) != want || strings.Contains(fs.Arg(0), "//") || strings.HasSuffix(fs.Arg(0), "/") {
		fmt.Fprintf(stderr, "slipstream planetscale: want %q with one argument\n\n%s", strings.Join(args, " "), planetscaleUsage)
		return 2
	}
	c, err := psClient(*tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "slipstream planetscale: %v\n", err)
		return 2
	}
	switch args[0] {
	case "databases":
		err = psDatabases(ctx, c, parts[0], stdout)
	case "branches":
		err = psBranches(ctx, c, parts[0], parts[1], stdout)
	case "check":
		err = psCheck(ctx, c, planetscale.Target{Org: parts[0], Database: parts[1], Branch: parts[2]}, *role, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "slipstream planetscale %s: %v\n", args[0], err)
		var se startupError
		if errors.As(err, &se) || planetscale.IsUnauthorized(err) || planetscale.IsNotFound(err) {
			return 2
		}
		return 1
	}
	return 0
}

func psDatabases(ctx context.Context, c *planetscale.Client, org string, stdout io.Writer) error {
	dbs, err := c.Databases(ctx, org)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tREGION")
	for _, d := range dbs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.Kind, d.State, d.Region.Slug)
	}
	return tw.Flush()
}

func psBranches(ctx context.Context, c *planetscale.Client, org, db string, stdout io.Writer) error {
	branches, err := c.Branches(ctx, org, db)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPRODUCTION\tREADY")
	for _, b := range branches {
		fmt.Fprintf(tw, "%s\t%t\t%t\n", b.Name, b.Production, b.Ready)
	}
	return tw.Flush()
}

// psCheck mints a credential valid for a minute, connects with it, runs SELECT 1 and deletes
// it, printing each step.
func psCheck(ctx context.Context, c *planetscale.Client, t planetscale.Target, role string, stdout io.Writer) error {
	t, err := c.Resolve(ctx, t)
	if err != nil {
		return startupError{err}
	}
	fmt.Fprintf(stdout, "branch %s: found, kind %s\n", t, t.Kind)
	cred, err := c.Mint(ctx, t, planetscale.MintRequest{Name: "slipstream-check-" + time.Now().UTC().Format("20060102t150405"), Role: role, TTL: time.Minute})
	if err != nil {
		return fmt.Errorf("minting a %s credential: %w", role, err)
	}
	fmt.Fprintf(stdout, "minted a %s credential for %s: user %s, host %s, expires %s\n", role, t, cred.Username, cred.Host, cred.Expires.UTC().Format(time.RFC3339))
	start := time.Now()
	qerr := psSelectOne(ctx, t.Kind, cred)
	if qerr == nil {
		fmt.Fprintf(stdout, "connected over verified TLS and ran SELECT 1 in %s\n", time.Since(start).Round(time.Millisecond))
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.Delete(dctx, t, cred.ID); err != nil {
		return errors.Join(qerr, fmt.Errorf("deleting the credential %s (it expires by itself within a minute): %w", cred.ID, err))
	}
	fmt.Fprintf(stdout, "deleted the credential %s\n", cred.ID)
	if qerr != nil {
		return qerr
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// psSelectOne connects to the branch with cred, over TLS verified against the system roots,
// and runs SELECT 1. Its errors never hold the password.
func psSelectOne(ctx context.Context, kind string, cred planetscale.Credential) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if kind == planetscale.KindPostgres {
		u := url.URL{Scheme: "postgres", User: url.UserPassword(cred.Username, cred.Password), Host: cred.Host, Path: "/" + cred.Database, RawQuery: "sslmode=verify-full"}
		cc, err := pgx.ParseConfig(u.String())
		if err != nil {
			return errors.New("connecting: the host the API gave is not valid")
		}
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return fmt.Errorf("connecting to %s: %s", cred.Host, psSafe(err, cred.Password))
		}
		defer conn.Close(context.WithoutCancel(ctx))
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			return fmt.Errorf("SELECT 1: %s", psSafe(err, cred.Password))
		}
		return nil
	}
	addr := cred.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "3306")
	}
	host, _, _ := net.SplitHostPort(addr)
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := client.ConnectWithDialer(ctx, "tcp", addr, cred.Username, cred.Password, cred.Database, d.DialContext, func(c *client.Conn) error {
		c.SetTLSConfig(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		return nil
	})
	if err != nil {
		return fmt.Errorf("connecting to %s: %s", cred.Host, psSafe(err, cred.Password))
	}
	defer conn.Close()
	if _, err := conn.Execute("SELECT 1"); err != nil {
		return fmt.Errorf("SELECT 1: %s", psSafe(err, cred.Password))
	}
	return nil
}

// psSafe is err's text with the password, should a driver quote it, blotted out.
func psSafe(err error, password string) string {
	return strings.ReplaceAll(err.Error(), password, "xxxxx")
}

// resolvePlanetScaleKinds gives every planetscale:// database of an edge's cfg whose kind is
// not configured the kind the API says: the edge serves it on that protocol's listener. The
// edge mints nothing (its pools do); set kind to spare it the token. Errors are startupErrors.
func resolvePlanetScaleKinds(ctx context.Context, cfg *config.Config) error {
	for i := range cfg.Databases {
		d := &cfg.Databases[i]
		if !d.IsPlanetScale() || d.Kind != "" {
			continue
		}
		o, err := config.ParsePlanetScaleOrigin(d.Origin)
		if err != nil {
			return startupError{fmt.Errorf("database %s: %w", d.Name, err)}
		}
		c, err := psClient(d.ServiceTokenFile)
		if err != nil {
			return startupError{fmt.Errorf("database %s: %w (or set its kind, mysql or postgres)", d.Name, err)}
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		target, err := c.Resolve(rctx, planetscale.Target{Org: o.Org, Database: o.Database, Branch: o.Branch})
		cancel()
		if err != nil {
			return startupError{fmt.Errorf("database %s (%s): %w", d.Name, o, err)}
		}
		d.SetPlanetScaleKind(target.Kind)
	}
	return nil
}

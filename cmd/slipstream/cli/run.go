package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/slipstream-proxy/slipstream/config"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the module
// version Go recorded, or "devel".
var version = ""

const usage = `Usage: slipstream <command> [flags]

Commands:
  serve     run the edge and the pool in one process (see slipstream serve -h)
  edge      run the edge near the applications, tunnelled to a pool (slipstream edge -h)
  pool      run the pool near the databases, serving edges (slipstream pool -h)
  certs     create the deployment CA and certificates of edges and pools
  bench     measure latency and throughput, simulate a WAN (see slipstream bench help)
  planetscale  list PlanetScale databases and branches, check a branch (slipstream planetscale help)
  version   print the version

A database URL given with --origin is served on --pg-listen (a mysql:// one on
--mysql-listen) with the same user, password and database name: swap the host
and port in the application's connection string and keep everything else.
`

// run is the whole CLI; main only adds signals and the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runConfigured(ctx, "serve", parseServe, serve, args[1:], stdout, stderr)
	case "edge":
		return runConfigured(ctx, "edge", parseEdge, edge, args[1:], stdout, stderr)
	case "pool":
		return runConfigured(ctx, "pool", parsePool, poolNode, args[1:], stdout, stderr)
	case "certs":
		return certs(args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "planetscale":
		return runPlanetScale(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "slipstream", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "slipstream: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// runConfigured parses a command's configuration and runs it, returning the exit code.
func runConfigured(ctx context.Context, name string,
	parse func([]string, io.Writer) (config.Config, error),
	do func(context.Context, config.Config, io.Writer, io.Writer) error,
	args []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		if !isFlagSyntax(err) { // the flag package printed those already, with the usage
			fmt.Fprintf(stderr, "slipstream %s: %v\n", name, err)
		}
		return 2
	}
	// A reload (SIGHUP) reads the configuration again the same way.
	ctx = withReparse(ctx, func() (config.Config, error) { return parse(args, io.Discard) })
	if err := do(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "slipstream %s: %v\n", name, err)
		var se startupError
		if errors.As(err, &se) {
			return 2
		}
		return 1
	}
	return 0
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// flagSyntaxError is a command-line error the flag package has already printed with the usage.
type flagSyntaxError struct{ error }

func (e flagSyntaxError) Unwrap() error { return e.error }

func isFlagSyntax(err error) bool {
	var fe flagSyntaxError
	return errors.As(err, &fe)
}

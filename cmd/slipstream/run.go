package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the module
// version Go recorded, or "devel".
var version = ""

const usage = `Usage: slipstream <command> [flags]

Commands:
  serve     run the edge and the pool in one process (see slipstream serve -h)
  version   print the version

A database URL given with --origin is served on --pg-listen (a mysql:// one on
--mysql-listen) with the same user, password and database name: swap the host
and port in the application's connection string and keep everything else.
`

// run is the whole CLI; main only adds signals and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:], stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			if !isFlagSyntax(err) { // the flag package printed those already, with the usage
				fmt.Fprintln(stderr, "slipstream serve:", err)
			}
			return 2
		}
		if err := serve(ctx, cfg, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "slipstream serve:", err)
			return 1
		}
		return 0
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

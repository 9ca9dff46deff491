// Command slipstream is a PostgreSQL wire-protocol proxy that makes a distant database feel
// local. See README.md; `slipstream help` lists the commands. Its logic lives in package cli,
// which the end-to-end tests (test/e2e) drive in-process.
package main

import (
	"context"
	"os"

	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
)

func main() {
	sigs, stop := cli.ProcessSignals() // SIGTERM drains, SIGHUP reloads: see cli/lifecycle.go
	code := cli.Run(cli.WithSignals(context.Background(), sigs), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

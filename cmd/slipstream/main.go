// Command slipstream is a PostgreSQL wire-protocol proxy that makes a distant database feel
// local. See README.md; `slipstream help` lists the commands.
package main

import (
	"context"
	"os"
)

func main() {
	sigs, stop := processSignals() // SIGTERM drains, SIGHUP reloads: see lifecycle.go
	code := run(withSignals(context.Background(), sigs), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

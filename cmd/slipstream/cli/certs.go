package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	tlscerts "github.com/slipstream-proxy/slipstream/certs"
)

const certsUsage = `Usage: slipstream certs [--dir DIR]

Certs creates what the tunnel between edges and pools needs: a deployment CA
(ca.crt, ca.key) and a certificate for the edge (edge.crt, edge.key) and the
pool (pool.crt, pool.key), each signed by the CA, for localhost, 127.0.0.1, ::1
and this machine's host name. Edges and pools accept only peers with a
certificate of the same CA. It never overwrites a file: run it again to
replace a missing certificate with one signed by the CA already there.

Copy ca.crt and the node's own .crt and .key to each machine; keep ca.key
where no node runs.

Flags:
`

// certs runs `slipstream certs` and returns the exit code.
func certs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./slipstream-certs", "write the certificates to `DIR`")
	fs.Usage = func() { printUsage(fs, certsUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "slipstream certs: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	host, _ := os.Hostname()
	written, err := tlscerts.CreateDeployment(*dir, host)
	for _, f := range written {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*dir, f))
	}
	if err != nil {
		fmt.Fprintln(stderr, "slipstream certs:", err)
		return 1
	}
	if len(written) == 0 {
		fmt.Fprintf(stdout, "every certificate is already in %s; nothing written\n", *dir)
	}
	return 0
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slipstream-proxy/slipstream/bench"
)

const freshnessUsage = `Usage: slipstream bench freshness --direct URL --via [NAME=]URL... [flags]

Freshness makes --writes updates straight at the origin (--direct, not through Slipstream)
while --clients clients read the written rows through each --via in a loop (each read
cacheable), and reports, for each write, the time from its commit until no client could read
the value from before it (p50, p99, max), and the reads that answered a value older than
--bound. The lag runs to the end of a write's last stale read; "start" columns run to
its start instead (the cache answered it in between; the difference is the read's own time).
Give two --via targets to compare them in one run, for example a Slipstream whose
database is invalidated from the change stream and one invalidated by max_age only:

  slipstream bench freshness --direct postgres://app:secret@127.0.0.1:5432/app \
    --via stream=postgres://app:secret@127.0.0.1:6432/app --via ttl=postgres://app:secret@127.0.0.1:6433/app

The table slipstream_freshness is made and dropped at the origin.

Flags:
`

func benchFreshness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("freshness", freshnessUsage, stderr)
	direct := fs.String("direct", "", "the origin's `URL`, where the writes go")
	var vias listFlag
	fs.Var(&vias, "via", "the `URL` of a Slipstream the reads go through, or NAME=URL; repeat to compare")
	writes := fs.Int("writes", 1000, "how many writes")
	clients := fs.Int("clients", 16, "concurrent readers")
	bound := fs.Duration("bound", 1e9, "a read answering a value older than this after a write's commit counts as too stale")
	jsonOut := fs.String("json", "", "write the results to `FILE` as JSON")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if *direct == "" || len(vias) == 0 {
		return usageError{errors.New("--direct and --via are required")}
	}
	type row struct {
		Name string `json:"name"`
		bench.FreshnessResult
	}
	var out []row
	fmt.Fprintf(stdout, "%-12s %7s %9s %9s %9s %10s %10s %9s %11s %8s\n", "target", "writes", "lag p50", "lag p99", "lag max",
		"start p99", "start max", "reads", "stale reads", "> bound")
	for i, v := range vias {
		name, u, ok := strings.Cut(v, "=")
		if !ok || strings.Contains(name, "://") {
			name, u = fmt.Sprintf("via%d", i+1), v
		}
		res, err := bench.RunFreshness(ctx, bench.FreshnessConfig{Direct: *direct, Via: u, Writes: *writes, Clients: *clients, Bound: *bound})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, row{name, res})
		fmt.Fprintf(stdout, "%-12s %7d %9v %9v %9v %10v %10v %9d %11d %8d\n", name, res.Writes, res.LagP50.Round(1e5), res.LagP99.Round(1e5),
			res.LagMax.Round(1e5), res.StartLagP99.Round(1e5), res.StartLagMax.Round(1e5), res.Reads, res.StaleReads, res.OverBound)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

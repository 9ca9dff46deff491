package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/bench"
	"github.com/slipstream-proxy/slipstream/config"
)

const benchUsage = `Usage: slipstream bench <command> [flags]

Commands:
  latency     query latency directly and through Slipstream, uncached and cached
  relay       forward TCP or UDP adding a round-trip time: a WAN on one machine
  throughput  N clients for a duration, direct, through Slipstream, PgBouncer, pgpool-II
  freshness   writes straight at the origin while clients read them through Slipstream:
              how long after each commit an old value can still be read
`

// runBench dispatches `slipstream bench <command>`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	ctx, stop := untilStopped(ctx) // SIGTERM or Ctrl-C ends a run (a relay's, at least)
	defer stop()
	var err error
	switch args[0] {
	case "latency":
		err = benchLatency(ctx, args[1:], stdout, stderr)
	case "relay":
		err = benchRelay(ctx, args[1:], stdout, stderr)
	case "throughput":
		err = benchThroughput(ctx, args[1:], stdout, stderr)
	case "freshness":
		err = benchFreshness(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, benchUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "slipstream bench: unknown command %q\n\n%s", args[0], benchUsage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case isFlagSyntax(err):
		return 2
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "slipstream bench %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(stderr, "slipstream bench %s: %v\n", args[0], err)
	return 1
}

// usageError is a wrong combination of flags: exit status 2, as for a malformed flag.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// newBenchFlags returns a flag set for `slipstream bench NAME` whose help prints head, then
// the flags spelled --name.
func newBenchFlags(name, head string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, head)
		fs.VisitAll(func(f *flag.Flag) {
			arg, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s\n    \t%s", strings.TrimSpace(f.Name+" "+arg), strings.ReplaceAll(usage, "\n", "\n    \t"))
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
	return fs
}

// parseBenchFlags parses args, refusing positional arguments.
func parseBenchFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return flagSyntaxError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q: this command takes only flags", fs.Arg(0))}
	}
	return nil
}

const relayUsage = `Usage: slipstream bench relay --listen ADDR --to ADDR --rtt DURATION [--udp] [--loss P]

Relay forwards connections (or, with --udp, datagrams) from --listen to --to, adding half of
--rtt in each direction, as a WAN between two machines would; a TCP connection also pays one
RTT for its handshake. It runs until interrupted. For example, a database 50 ms away:

  slipstream bench relay --listen 127.0.0.1:15432 --to 127.0.0.1:5432 --rtt 50ms

Flags:
`

func benchRelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("relay", relayUsage, stderr)
	listen := fs.String("listen", "127.0.0.1:0", "accept on `ADDR` (host:port; port 0 picks a free one)")
	to := fs.String("to", "", "forward to `ADDR` (host:port)")
	rtt := fs.Duration("rtt", 0, "round-trip time to add, a `DURATION` such as 50ms; half each way")
	udp := fs.Bool("udp", false, "relay UDP datagrams (QUIC) instead of TCP connections")
	loss := fs.Float64("loss", 0, "drop each datagram with probability `P` in [0, 1), each way; UDP only")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return usageError{errors.New("--to is required")}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := bench.StartRelay(ctx, bench.RelayConfig{Listen: *listen, To: *to, RTT: *rtt, UDP: *udp, Loss: *loss, Logger: log})
	if err != nil {
		return err
	}
	proto := "tcp"
	if *udp {
		proto = "udp"
	}
	fmt.Fprintf(stdout, "relay %s %s -> %s, rtt %v, loss %g\n", proto, r.Addr(), *to, *rtt, *loss)
	<-ctx.Done()
	start := time.Now()
	r.Close()
	log.Info("relay stopped", "closing", time.Since(start))
	return nil
}

const latencyUsage = `Usage: slipstream bench latency (--direct URL [--via URL] | --topology local --origin URL) [flags]

Latency runs back-to-back point reads, one at a time, and prints their p50, p95 and p99:
with a new connection per query (connect, authenticate, query, close: how a serverless
function talks to its database) and on a persistent connection; straight to the database
(--direct), and through Slipstream (--via) with the query marked
/* slipstream: cache=off */ (uncached) and without it after a warm-up (cached).
URLs are postgres://USER:PASSWORD@HOST:PORT/DB or mysql://...; the table
slipstream_bench is created on the database when missing.

--topology local stands the whole thing up on this machine around --origin: the direct
path through a relay adding --rtt, with --origin's TLS settings (as a remote database needs);
Slipstream's edge on loopback, reached in plain TCP as a sidecar is (--edge-tls: TLS), with
the same RTT between the edge and its pool next to the origin.

  slipstream bench latency --topology local --rtt 50ms \
    --origin 'postgres://app:secret@127.0.0.1:5432/app?sslmode=require'
  slipstream bench latency --topology local --rtt 50ms \
    --origin 'mysql://app:secret@127.0.0.1:3306/app?tls=skip-verify'

Flags:
`

func benchLatency(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("latency", latencyUsage, stderr)
	direct := fs.String("direct", "", "the database as the application reaches it without Slipstream, a `URL`")
	via := fs.String("via", "", "the same database through Slipstream, a `URL`")
	topology := fs.String("topology", "", "`local`: start relays and Slipstream on this machine around --origin")
	origin := fs.String("origin", "", "with --topology local: the database, a `URL` reached without added latency")
	rtt := fs.Duration("rtt", 0, "with --topology: the simulated round trip, a `DURATION` such as 50ms;\n"+
		"otherwise the known RTT to the database, for the WAN round trips column")
	edgeTLS := fs.Bool("edge-tls", false, "with --topology local: connect to Slipstream's edge with TLS, not plain TCP on loopback")
	queries := fs.Int("queries", 200, "timed queries per series, `N`")
	jsonOut := fs.String("json", "", "also write the results as JSON to `FILE`")
	chartOut := fs.String("chart", "", "also draw the results as an SVG bar chart in `FILE`")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := bench.LatencyConfig{Direct: *direct, Via: *via, Queries: *queries, RTT: *rtt}
	title, shape, edgeLeg := "Query latency, direct and through Slipstream", "", "plain TCP"
	switch *topology {
	case "":
		if *edgeTLS {
			return usageError{errors.New("--edge-tls goes with --topology local; otherwise --via says how to connect")}
		}
		if *origin != "" {
			return usageError{errors.New("--origin goes with --topology local; without it give --direct and --via")}
		}
		if *direct == "" {
			return usageError{errors.New("--direct is required (or --topology local --origin URL)")}
		}
	case "local":
		if *direct != "" || *via != "" {
			return usageError{errors.New("--topology local makes its own paths: give --origin, not --direct or --via")}
		}
		if *origin == "" {
			return usageError{errors.New("--topology local needs --origin URL")}
		}
		if *rtt <= 0 {
			return usageError{errors.New("--topology local needs --rtt, such as 50ms")}
		}
		if *edgeTLS {
			edgeLeg = "TLS"
		}
		log.Info("starting the local topology", "origin", config.RedactURL(*origin), "rtt", *rtt)
		top, err := bench.StartLocal(ctx, bench.TopologyConfig{Origin: *origin, RTT: *rtt, EdgeTLS: *edgeTLS, Logger: log})
		if err != nil {
			return err
		}
		defer top.Close()
		cfg.Direct, cfg.Via, cfg.Setup = top.DirectURL, top.ViaURL, *origin
		log.Info("topology ready", "direct", config.RedactURL(top.DirectURL), "via", config.RedactURL(top.ViaURL), "shape", top.Shape)
		shape = " · " + top.Shape + ", " + edgeLeg + " to the edge"
	default:
		return usageError{fmt.Errorf("--topology %q: the only topology is local", *topology)}
	}
	if *queries <= 0 {
		return usageError{errors.New("--queries must be at least 1")}
	}
	var bar *bench.ProgressBar
	if isTerminal(stderr) {
		bar = bench.NewProgressBar(stderr, "latency")
		cfg.Progress = bar.Update
	}
	results, err := bench.RunLatency(ctx, cfg)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	if err := bench.WriteTable(stdout, results); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := bench.WriteJSONFile(*jsonOut, bench.LatencyReport{Results: results}); err != nil {
			return err
		}
	}
	if *chartOut != "" {
		sub := fmt.Sprintf("%d queries per series, one at a time%s", *queries, shape)
		if *rtt > 0 {
			sub = fmt.Sprintf("%v round trip to the database · ", *rtt) + sub
		}
		var b strings.Builder
		if err := bench.WriteChart(&b, results, title, sub); err != nil {
			return err
		}
		if err := os.WriteFile(*chartOut, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal, where a progress bar may redraw itself.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const throughputUsage = `Usage: slipstream bench throughput --direct URL [--via URL] [--compare pgbouncer,pgpool,haproxy] [flags]

Throughput runs --clients connections at once for --duration against each target in turn:
the database directly (--direct), through Slipstream (--via), and through PgBouncer
(transaction pooling), pgpool-II (its query cache on) and HAProxy (TCP mode) started here from Debian's packages
in front of --direct's database (--compare). Each operation is a point read with probability
--read-ratio, else an update of one row, rows picked among the first --hot-set. The table
slipstream_bench is created on --direct's database when missing. URLs are postgres:// or
mysql:// (--compare needs postgres://).

For every proxy on this machine (found by the port of its URL, or started by --compare) it
also reports, from /proc, its CPU microseconds per operation over the timed run (user +
system time of its process tree); its system calls per operation, counted by strace -c -f
in a second, untimed run of --syscall-duration (n/a without strace: it slows the proxy, so
it never runs during the timed run); and the growth of its resident memory per idle client
with --idle-clients extra sessions open. A proxy running inside the bench process itself
reports n/a.

  slipstream bench throughput --direct postgres://app:secret@127.0.0.1:5432/app?sslmode=disable \
    --via postgres://app:secret@127.0.0.1:6432/app?sslmode=disable --compare pgbouncer,pgpool
  slipstream bench throughput --direct mysql://app:secret@127.0.0.1:3306/app \
    --via mysql://app:secret@127.0.0.1:3307/app

Flags:
`

func benchThroughput(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("throughput", throughputUsage, stderr)
	direct := fs.String("direct", "", "the database as the application reaches it without Slipstream, a `URL`")
	via := fs.String("via", "", "the same database through Slipstream, a `URL`")
	compare := fs.String("compare", "", "also run PgBouncer and/or pgpool-II, a `LIST` such as pgbouncer,pgpool")
	clients := fs.Int("clients", 16, "connections running at once, `N`")
	duration := fs.Duration("duration", 10*time.Second, "how long each target runs, a `DURATION`")
	readRatio := fs.Float64("read-ratio", 0.9, "share of operations that are reads, a `FRACTION` in [0, 1]")
	hotSet := fs.Int("hot-set", 1000, "rows the operations pick from, `N`")
	jsonOut := fs.String("json", "", "also write the results as JSON to `FILE`")
	idle := fs.Int("idle-clients", 1000, "idle sessions opened per proxy to measure its memory per idle client, `N` (0: skip)")
	syscallDur := fs.Duration("syscall-duration", 3*time.Second, "length of the untimed run under strace per proxy, a `DURATION` (0: skip)")
	if err := parseBenchFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *direct == "":
		return usageError{errors.New("--direct is required")}
	case *idle < 0, *syscallDur < 0:
		return usageError{errors.New("--idle-clients and --syscall-duration must not be negative")}
	case *clients <= 0, *duration <= 0, *hotSet <= 0:
		return usageError{errors.New("--clients, --duration and --hot-set must be positive")}
	case *readRatio < 0 || *readRatio > 1:
		return usageError{errors.New("--read-ratio must be in [0, 1]")}
	}
	targets := []bench.Target{{Name: bench.Direct, URL: *direct}}
	var peerPIDs map[string]int
	if *via != "" {
		targets = append(targets, bench.Target{Name: "slipstream", URL: *via})
	}
	if *compare != "" {
		names := strings.Split(*compare, ",")
		peers, err := bench.StartPeers(ctx, *direct, names)
		if err != nil {
			return err
		}
		defer peers.Close()
		for _, n := range names {
			targets = append(targets, bench.Target{Name: n, URL: peers.URLs[n]})
		}
		peerPIDs = peers.PIDs
	}
	cfg := bench.ThroughputConfig{Targets: targets, Clients: *clients, Duration: *duration, ReadRatio: *readRatio, HotSet: *hotSet,
		IdleClients: *idle, SyscallDuration: *syscallDur, PIDs: peerPIDs}
	var bar *bench.ProgressBar
	if isTerminal(stderr) {
		bar = bench.NewProgressBar(stderr, "throughput")
		cfg.Progress = bar.Update
	}
	results, err := bench.RunThroughput(ctx, cfg)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d clients, %v per target, %.0f%% reads over %d rows\n", *clients, *duration, *readRatio*100, *hotSet)
	if err := bench.WriteThroughputTable(stdout, results); err != nil {
		return err
	}
	if *jsonOut != "" {
		return bench.WriteJSONFile(*jsonOut, bench.ThroughputReport{Results: results})
	}
	return nil
}

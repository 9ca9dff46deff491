package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/bench"
)

const benchUsage = `Usage: slipstream bench <command> [flags]

Commands:
  relay       forward TCP or UDP adding a round-trip time: a WAN on one machine
`

// runBench dispatches `slipstream bench <command>`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	var err error
	switch args[0] {
	case "relay":
		err = benchRelay(ctx, args[1:], stdout, stderr)
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

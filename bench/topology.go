package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// TopologyConfig says what StartLocal stands up.
type TopologyConfig struct {
	// Origin is the database's URL, reached without any added latency: the pool sits next
	// to it. Required.
	Origin string
	// RTT is the simulated round trip between the application's side and the database's.
	RTT time.Duration
	// EdgeTLS makes the application's side ask Slipstream's listener for TLS (sslmode=require,
	// tls=skip-verify: the edge's certificate is self-signed). False connects in plain TCP on
	// loopback, as an application does to an edge running beside it as a sidecar.
	EdgeTLS bool
	// Command is the slipstream binary to run; empty means this process's own executable.
	Command string
	// Logger gets one line per process started and the shape chosen; nil discards.
	Logger *slog.Logger
}

// Topology is a deployment on one machine that puts RTT between the application and the
// database, for the direct path and for the path through Slipstream alike:
//
//	direct:  client ──> TCP relay (RTT) ──> origin
//	via:     client ──loopback──> slipstream edge ──> UDP relay (RTT, QUIC) ──> slipstream pool ──> origin
//
// The direct path keeps the origin URL's TLS settings, as an application reaching a remote
// database must; the client's leg to Slipstream is plain TCP on loopback unless EdgeTLS.
// When this binary has no `edge` and `pool` commands yet (or they fail to start), via falls
// back to `slipstream serve` with the TCP relay between its pool and the origin, which puts
// the pool on the application's side of the WAN:
//
//	via:     client ──> slipstream serve ──> TCP relay (RTT) ──> origin
type Topology struct {
	// DirectURL reaches the origin through the relay; ViaURL reaches it through Slipstream.
	// Both carry the origin's credentials: never print them (config.RedactURL).
	DirectURL, ViaURL string
	// Shape says which via path runs: ShapeEdgePool or ShapeServe.
	Shape string

	cfg      TopologyConfig
	protocol string // the origin's: Postgres or MySQL
	log      *slog.Logger
	dir      string
	relays   []*Relay
	procs    []*process
	redact   *strings.Replacer
}

// Shapes of the via path.
const (
	ShapeEdgePool = "edge+pool"
	ShapeServe    = "serve"
)

// StartLocal starts the relays and Slipstream processes of a Topology and returns once both
// paths answer a query. Close stops everything and removes the working directory.
func StartLocal(ctx context.Context, cfg TopologyConfig) (_ *Topology, err error) {
	if cfg.Origin == "" {
		return nil, errors.New("topology: no origin URL")
	}
	protocol, err := ProtocolOf(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("topology: origin: %w", err)
	}
	origin, err := url.Parse(cfg.Origin)
	if err != nil {
		return nil, errors.New("topology: origin is not a valid URL")
	}
	if cfg.Command == "" {
		if cfg.Command, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
	}
	t := &Topology{cfg: cfg, protocol: protocol, log: cfg.Logger}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	pw, _ := origin.User.Password()
	t.redact = passwordHider(pw)
	if t.dir, err = os.MkdirTemp("", "slipstream-topology-"); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	originAddr := origin.Host
	if origin.Port() == "" {
		originAddr = net.JoinHostPort(origin.Hostname(), map[string]string{Postgres: "5432", MySQL: "3306"}[protocol])
	}

	// The direct path.
	direct, err := t.relay(ctx, RelayConfig{To: originAddr, RTT: cfg.RTT})
	if err != nil {
		return nil, err
	}
	t.DirectURL = withHost(origin, direct.Addr())
	if err := t.startVia(ctx, origin, direct.Addr()); err != nil {
		return nil, err
	}
	return t, nil
}

// startVia starts the path through Slipstream: edge and pool split by a UDP relay when this
// binary has those commands, else serve behind the TCP relay originRelay. This is the one
// place that chooses.
func (t *Topology) startVia(ctx context.Context, origin *url.URL, originRelay string) error {
	if t.hasCommand(ctx, "edge") && t.hasCommand(ctx, "pool") && t.hasCommand(ctx, "certs") {
		err := t.startEdgePool(ctx, origin)
		if err == nil {
			return nil
		}
		t.log.Warn("topology: edge and pool did not start or did not answer a query; falling back to serve", "err", err)
		t.stopProcesses()
	} else {
		t.log.Warn("topology: this slipstream has no edge and pool commands yet; falling back to " +
			"`slipstream serve` with the relay between its pool and the origin (the pool sits on " +
			"the application's side of the WAN, so connection setup to the origin crosses it)")
	}
	return t.startServe(ctx, origin, originRelay)
}

// startEdgePool runs `slipstream certs`, then a pool next to the origin and an edge on
// loopback, with a UDP relay of the topology's RTT between them, all in the topology's
// directory (where certs writes and edge and pool read ./slipstream-certs).
func (t *Topology) startEdgePool(ctx context.Context, origin *url.URL) error {
	if out, err := t.runToEnd(ctx, "certs"); err != nil {
		return fmt.Errorf("slipstream certs: %w: %s", err, out)
	}
	tunnel, err := freeAddr("udp")
	if err != nil {
		return err
	}
	poolHTTP, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	if _, err := t.start("pool", "pool", "--region", "local", "--tunnel-listen", tunnel,
		"--origin", origin.String(), "--http-listen", poolHTTP); err != nil {
		return err
	}
	wan, err := t.relay(ctx, RelayConfig{To: tunnel, RTT: t.cfg.RTT, UDP: true})
	if err != nil {
		return err
	}
	listen, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	edgeHTTP, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	myListen, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	edge, err := t.start("edge", "edge", "--pool", "local="+wan.Addr(), "--origin", origin.String(),
		"--pg-listen", listen, "--mysql-listen", myListen, "--http-listen", edgeHTTP)
	if err != nil {
		return err
	}
	t.Shape = ShapeEdgePool
	return t.readyVia(ctx, edge)
}

// readyVia reads the connection string p printed for the origin's protocol, sets ViaURL from
// it and waits until a query through ViaURL works.
func (t *Topology) readyVia(ctx context.Context, p *process) error {
	printed, err := printedURL(ctx, p, t.protocol, t.redact)
	if err != nil {
		return err
	}
	if t.ViaURL, err = clientURL(printed, t.protocol, t.cfg.EdgeTLS); err != nil {
		return err
	}
	return t.waitReady(ctx, p, t.ViaURL)
}

// startServe runs `slipstream serve` with its origin behind the TCP relay originRelay.
func (t *Topology) startServe(ctx context.Context, origin *url.URL, originRelay string) error {
	listen, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	myListen, err := freeAddr("tcp")
	if err != nil {
		return err
	}
	p, err := t.start("serve", "serve", "--config=", "--origin", withHost(origin, originRelay),
		"--pg-listen", listen, "--mysql-listen", myListen, "--http-listen", httpAddr,
		"--data-dir", filepath.Join(t.dir, "serve-data"))
	if err != nil {
		return err
	}
	t.Shape = ShapeServe
	return t.readyVia(ctx, p)
}

// Close stops the processes (SIGINT, then SIGKILL after 5 s) and relays and removes the
// working directory with the processes' logs.
func (t *Topology) Close() error {
	t.stopProcesses()
	for _, r := range t.relays {
		r.Close()
	}
	t.relays = nil
	if t.dir != "" {
		os.RemoveAll(t.dir)
		t.dir = ""
	}
	return nil
}

func (t *Topology) relay(ctx context.Context, cfg RelayConfig) (*Relay, error) {
	cfg.Logger = t.log
	r, err := StartRelay(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	t.relays = append(t.relays, r)
	return r, nil
}

// hasCommand reports whether the slipstream binary knows `name`: its help exits 0.
func (t *Topology) hasCommand(ctx context.Context, name string) bool {
	cmd := exec.CommandContext(ctx, t.cfg.Command, name, "--help")
	cmd.Dir = t.dir
	return cmd.Run() == nil
}

// runToEnd runs slipstream with args to completion and returns its redacted output.
func (t *Topology) runToEnd(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, t.cfg.Command, args...)
	cmd.Dir = t.dir
	out, err := cmd.CombinedOutput()
	return t.redact.Replace(string(bytes.TrimSpace(out))), err
}

// start runs slipstream with args in the background, logging to DIR/NAME.log.
func (t *Topology) start(name string, args ...string) (*process, error) {
	p, err := startProcess(t.dir, name, nil, t.cfg.Command, args...)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	t.procs = append(t.procs, p)
	t.log.Info("topology: started slipstream "+name, "pid", p.cmd.Process.Pid)
	return p, nil
}

func (t *Topology) stopProcesses() {
	for i := len(t.procs) - 1; i >= 0; i-- {
		t.procs[i].stop(syscall.SIGINT)
	}
	t.procs = nil
}

// waitReady waits until a query through rawURL works, failing early if p exits.
func (t *Topology) waitReady(ctx context.Context, p *process, rawURL string) error {
	return waitReady(ctx, p, rawURL, t.redact)
}

// printedURL waits up to 30 s for the line `database NAME: URL` that slipstream edge and serve
// print for each database, and returns the first URL of protocol; it fails early if p exits.
func printedURL(ctx context.Context, p *process, protocol string, redact *strings.Replacer) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		b, _ := os.ReadFile(p.log)
		for _, line := range strings.Split(string(b), "\n") {
			rest, ok := strings.CutPrefix(line, "database ")
			if !ok {
				continue
			}
			if _, u, ok := strings.Cut(rest, ": "); ok {
				if got, err := ProtocolOf(u); err == nil && got == protocol {
					return strings.TrimSpace(u), nil
				}
			}
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.logTail(redact))
		case <-ctx.Done():
			return "", fmt.Errorf("%s printed no %s:// connection string; its log: %s", p.name, protocol, p.logTail(redact))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clientURL is the connection string Slipstream printed with the client's TLS setting: with
// tls, TLS without verifying the edge's self-signed certificate; without, plain TCP (pgx would
// otherwise try TLS first, as sslmode=prefer).
func clientURL(printed, protocol string, tls bool) (string, error) {
	u, err := url.Parse(printed)
	if err != nil {
		return "", errors.New("topology: slipstream printed a connection string that is not a URL")
	}
	q := u.Query()
	switch {
	case protocol == MySQL && tls:
		q.Set("tls", "skip-verify")
	case protocol == MySQL:
		q.Set("tls", "false")
	case tls:
		q.Set("sslmode", "require")
	default:
		q.Set("sslmode", "disable")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(network string) (string, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// withHost returns u with its host and port replaced by addr.
func withHost(u *url.URL, addr string) string {
	v := *u
	v.Host = addr
	return v.String()
}

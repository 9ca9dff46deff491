package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	tlscerts "github.com/slipstream-proxy/slipstream/certs"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/placement"
	"github.com/slipstream-proxy/slipstream/poolend"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

const poolUsageHead = `Usage: slipstream pool [flags]

Pool runs next to the databases. It keeps warm connections to each --origin and
serves the edges (slipstream edge) that connect to --tunnel-listen over QUIC,
or, inside a private network, connects out to the edges given with --dial-edge.

Example, with the certificates of 'slipstream certs' in ./slipstream-certs:

  slipstream pool --region us-east --tunnel-listen 0.0.0.0:7432 \
    --origin postgres://app:secret@db.example.com:5432/app

Flags:
`

// defaultPoolHTTPListen and defaultPoolPGListen differ from the edge's, so that an edge and a
// pool started with their defaults on one machine don't collide.
const (
	defaultPoolHTTPListen = "127.0.0.1:9433"
	defaultPoolPGListen   = "127.0.0.1:6433"
)

// parsePool turns the arguments of `slipstream pool` into a validated configuration.
func parsePool(args []string, stderr io.Writer) (config.Config, error) {
	var edges listFlag
	return parseCommand(command{
		name: "pool",
		head: poolUsageHead,
		flags: func(fs *flag.FlagSet, def config.Config) {
			fs.Lookup("http-listen").DefValue = defaultPoolHTTPListen
			fs.String("pg-listen", defaultPoolPGListen, "accept admin console clients (database slipstream or pgbouncer) on `ADDR`\n"+
				"(host:port); only when admin_users or stats_users are set")
			fs.String("region", def.Region, "the `NAME` of the region the pool runs in, for logs")
			fs.String("tunnel-listen", "", "accept edges on UDP `ADDR` (host:port)")
			fs.Var(&edges, "dial-edge", "connect out to the edge at UDP `ADDR` (its --tunnel-listen) and serve it over that\n"+
				"connection (reverse tunnel); repeat for more edges")
			fs.String("certs", def.CertsDir, "read the deployment CA and this pool's certificate (pool.crt, pool.key) from `DIR`")
			fs.Bool("drop-slot", false, "drop the replication slot of each PostgreSQL database's change stream\n"+
				"(invalidation = \"stream\") and exit, when the pool is retired")
			fs.Bool("no-cache", false, "keep no result cache for the edges to share (by default the pool keeps one of\n"+
				"[cache] max_bytes, which answers a read that one edge caches for the others, without the origin)")
		},
		set: func(f *flag.Flag, cfg *config.Config) {
			switch f.Name {
			case "dial-edge":
				cfg.DialEdges = edges
			case "drop-slot":
				cfg.DropSlots = f.Value.String() == "true"
			case "no-cache":
				cfg.Cache.Disabled = f.Value.String() == "true"
			}
		},
		defaults: func(cfg *config.Config) {
			if cfg.HTTPListen == "" {
				cfg.HTTPListen = defaultPoolHTTPListen
			}
			if cfg.PGListen == "" {
				cfg.PGListen = defaultPoolPGListen
			}
		},
		validate: config.Config.ValidatePool,
	}, args, stderr)
}

// poolNode runs the pool until ctx ends: a pool per database, served to edges over the tunnel.
func poolNode(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	level := new(slog.LevelVar) // info; SET log_level on the console changes it
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("region", cfg.Region)
	if cfg.DropSlots {
		return dropSlots(ctx, cfg, stdout)
	}
	RaiseFileLimit(log)
	ctx, stop := context.WithCancel(ctx) // the console's SHUTDOWN
	defer stop()
	tlsConf, err := tunnel.LoadTLS(cfg.CertsDir, tlscerts.NodePool)
	if err != nil {
		return err
	}
	reg := newRegistry()
	ps, og, closeServed, err := openServed(ctx, &cfg, log, reg) // the edges route replica reads over the tunnel
	if err != nil {
		return err
	}
	defer closeServed()
	// Measure the latency to every origin before serving, so that the first profile an edge
	// fetches already tells it how near this pool is; then keep measuring.
	addrs := map[string]placement.Target{}
	for _, d := range cfg.Databases {
		addrs[cfg.TunnelName(d)] = originTarget(d)
	}
	prober := placement.NewProber(addrs, 5, 30*time.Second)
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	prober.Measure(mctx)
	cancel()
	ecfg := poolend.Config{Metrics: poolend.NewMetrics(reg)}
	if !cfg.Cache.Disabled {
		// Shared by the edges: reads one edge's cache keeps are answered here for the others,
		// and every edge's reported writes invalidate it.
		results, err := cache.New(cfg.Cache.MaxBytes)
		if err != nil {
			return err
		}
		defer results.Close()
		ecfg.Cache = results
	}
	end := poolend.New(ecfg)
	origins := map[string]link.Origin{}
	for name, o := range og.byName {
		origins[name] = end.Origin(name, placement.Measured(o, prober, name))
	}
	scfg := tunnel.ServerConfig{Origins: origins, TLS: tlsConf, Logger: log}
	server := tunnel.NewServer(scfg)
	for _, p := range og.pools {
		// A statement that changes the catalog (functions, views, triggers...) is answered once
		// every edge has the new profile.
		p.OnCatalogChange(func() { server.CatalogChanged(p.Name()) })
	}
	for name, p := range og.mypools {
		p.OnCatalogChange(func() { server.CatalogChanged(name) })
	}

	servers := []func(context.Context) error{func(ctx context.Context) error { prober.Run(ctx); return nil }}
	servers = append(servers, changeStreams(cfg, poolSink{server: server, cache: ecfg.Cache}, ecfg.Cache, log, reg)...)
	if cfg.TunnelListen != "" {
		pc, err := net.ListenPacket("udp", cfg.TunnelListen)
		if err != nil {
			return fmt.Errorf("listen for edges: %w", err)
		}
		defer pc.Close()
		fmt.Fprintf(stdout, "tunnel: udp %s\n", pc.LocalAddr())
		servers = append(servers, func(ctx context.Context) error { return server.Serve(ctx, pc) })
	}
	for _, addr := range cfg.DialEdges {
		fmt.Fprintf(stdout, "tunnel: dialing the edge at udp %s\n", addr)
		servers = append(servers, func(ctx context.Context) error { return server.DialEdge(ctx, addr) })
	}
	adm, err := newAdmin(cfg, poolRole(cfg, og, ecfg.Cache, server, prober), reg, log, level, stop)
	if err != nil {
		return err
	}
	consoles, err := poolConsole(cfg, adm, log, stdout)
	if err != nil {
		return err
	}
	httpln, err := listenTCP(cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	checkOrigins(ctx, stdout, log, cfg, tunnel.NewLocal(og.byName))
	for _, d := range cfg.Databases {
		fmt.Fprintf(stdout, "database %s: %s\n", d.Name, config.RedactURL(d.Origin))
	}
	fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", httpln.Addr())
	log.Info("slipstream pool serving", "tunnel", cfg.TunnelListen, "dial_edge", cfg.DialEdges, "databases", len(cfg.Databases))
	lc := newLifecycle(ctx, cfg, log)
	reloader := &serveReloader{cfg: cfg, og: og, local: server, log: log, ps: ps,
		opened: func(name string, o link.Origin) link.Origin {
			onCatalogChange(og, server, name)
			return end.Origin(name, placement.Measured(o, prober, name))
		}}
	lc.apply = adm.reloading(reloader.apply)
	ready := lc.ready(func() bool { return ctx.Err() == nil })
	adm.controller.reload = lc.Reload // the console's RELOAD is SIGHUP's
	mux := newMux(reg, ready)
	lc.handleProbes(mux, ready)
	return lc.run(ctx, httpln, adm.handleHTTP(mux, cfg.HTTPListen), servers, consoles)
}

// onCatalogChange has the pool a reload opened for database name (by tunnel name) tell the
// edges when a statement changes the catalog, as poolNode has the others.
func onCatalogChange(og *origins, server *tunnel.Server, name string) {
	if p, ok := og.mypools[name]; ok {
		p.OnCatalogChange(func() { server.CatalogChanged(name) })
		return
	}
	for i := len(og.pools) - 1; i >= 0; i-- { // the newest, which a reload may have opened
		if p := og.pools[i]; p.Name() == name {
			p.OnCatalogChange(func() { server.CatalogChanged(name) })
			return
		}
	}
}

// originTarget is what a pool probes for its latency to d's origin; nothing for an embedded
// database, which is in the pool's own process.
func originTarget(d config.Database) placement.Target {
	if d.Embedded() {
		return placement.Target{}
	}
	u, err := url.Parse(d.Origin)
	if err != nil || u.Hostname() == "" {
		return placement.Target{}
	}
	t := placement.Target{Protocol: "postgres"}
	port := u.Port()
	if d.Kind == config.KindMySQL {
		t.Protocol = "mysql"
		if port == "" {
			port = "3306"
		}
	} else if port == "" {
		port = "5432"
	}
	t.Addr = net.JoinHostPort(u.Hostname(), port)
	return t
}

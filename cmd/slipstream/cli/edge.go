package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	tlscerts "github.com/slipstream-proxy/slipstream/certs"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/placement"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

const edgeUsageHead = `Usage: slipstream edge [flags]

Edge runs next to the applications. Clients connect to --pg-listen as they
would to the database; the edge authenticates them, answers their startup and
cached reads itself, and sends the rest over a QUIC tunnel to the pool
(slipstream pool) next to the database. It needs each database's --origin URL
for its name, credentials and caching, but it never connects to the origin.

Example, with the certificates of 'slipstream certs' in ./slipstream-certs:

  slipstream edge --pool us-east=pool.example.com:7432 \
    --origin postgres://app:secret@db.example.com:5432/app

then point the application at postgres://app:secret@127.0.0.1:6432/app.

Flags:
`

// parseEdge turns the arguments of `slipstream edge` into a validated configuration.
func parseEdge(args []string, stderr io.Writer) (config.Config, error) {
	var pools poolFlags
	return parseCommand(command{
		name: "edge",
		head: edgeUsageHead,
		flags: func(fs *flag.FlagSet, def config.Config) {
			fs.String("pg-listen", def.PGListen, "accept PostgreSQL clients on `ADDR` (host:port)")
			fs.String("mysql-listen", def.MySQLListen, "accept MySQL clients on `ADDR` (host:port), for mysql:// databases")
			fs.Var(&pools, "pool", "send sessions to the pool `NAME=ADDR`, ADDR being the UDP host:port of its --tunnel-listen")
			fs.String("certs", def.CertsDir, "read the deployment CA and this edge's certificate (edge.crt, edge.key) from `DIR`")
			fs.String("tunnel-listen", "", "without --pool: accept a pool that dials in (slipstream pool --dial-edge) on UDP `ADDR` (host:port)")
		},
		set: func(f *flag.Flag, cfg *config.Config) {
			if f.Name == "pool" {
				cfg.Pools = pools
			}
		},
		validate: config.Config.ValidateEdge,
	}, args, stderr)
}

// poolFlags collects repeated --pool NAME=ADDR flags.
type poolFlags []config.Pool

func (p *poolFlags) String() string {
	s := make([]string, len(*p))
	for i, pl := range *p {
		s[i] = pl.Name + "=" + pl.Address
	}
	return strings.Join(s, ", ")
}

func (p *poolFlags) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=ADDR, such as us-east=pool.example.com:7432")
	}
	*p = append(*p, config.Pool{Name: name, Address: addr})
	return nil
}

// edge runs the edge until ctx ends: the client listener, the result cache, and the tunnel to
// the pool.
func edge(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	level := new(slog.LevelVar) // info; SET log_level on the console changes it
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	RaiseFileLimit(log)
	ctx, stop := context.WithCancel(ctx) // the console's SHUTDOWN
	defer stop()
	reg := newRegistry()
	if err := resolvePlanetScaleKinds(ctx, &cfg); err != nil {
		return err
	}
	dbs, err := edgeDatabases(cfg)
	if err != nil {
		return err
	}
	tlsConf, err := tunnel.LoadTLS(cfg.CertsDir, tlscerts.NodeEdge)
	if err != nil {
		return err
	}
	results, err := cache.New(cfg.Cache.MaxBytes)
	if err != nil {
		return err
	}
	defer results.Close()
	for _, d := range cfg.Databases {
		if d.Streamed() { // its pool passes its change stream's state to this cache (tunnel.StreamStates)
			registerReadsBehind(reg, results, d.Name)
		}
	}
	// The pools invalidate the cache after other edges' writes, and it is dropped whenever a
	// pool's connection is lost or made.
	tcfg := tunnel.ClientConfig{TLS: tlsConf, Logger: log, Cache: results}
	names := make([]string, len(cfg.Databases))
	for i, d := range cfg.Databases {
		names[i] = cfg.TunnelName(d)
	}
	var transport link.Transport
	var router *placement.Router
	var tunnels []edgeTunnel // for the console's SHOW TUNNELS
	var background []func(context.Context) error
	tunnelDesc := ""
	if len(cfg.Pools) > 0 {
		// One tunnel per pool; the router places each database at the pool nearest its origin
		// (or its pool_region) and moves it when that pool dies.
		var cands []placement.Candidate
		var descs []string
		for _, p := range cfg.Pools {
			client := tunnel.Dial(ctx, p.Address, tcfg)
			defer client.Close()
			client.Warm(names...)
			cands = append(cands, placement.Candidate{Region: p.Name, Transport: client, Ping: client.Ping,
				Latency: func(ctx context.Context, db string) (time.Duration, error) {
					prof, err := client.Profile(ctx, db)
					if err == nil && prof.OriginLatency < 0 {
						err = fmt.Errorf("pool %s could not measure its latency to the origin of %s", p.Name, db)
					}
					return prof.OriginLatency, err
				}})
			descs = append(descs, "pool "+p.Name+" at udp "+p.Address)
			tunnels = append(tunnels, edgeTunnel{name: p.Name, addr: p.Address, client: client})
		}
		pins := map[string]string{}
		for _, d := range cfg.Databases {
			if d.PoolRegion != "" {
				pins[cfg.TunnelName(d)] = d.PoolRegion
			}
		}
		router = placement.NewRouter(placement.Config{Candidates: cands, Databases: names, Pins: pins,
			Timeout: 3 * time.Second, Logger: log})
		// Place the databases before taking clients, so the first ones already go to the nearest
		// pool; a pool not up yet joins at a later refresh.
		router.Refresh(ctx)
		transport = router
		background = append(background, func(ctx context.Context) error { router.Run(ctx); return nil })
		tunnelDesc = strings.Join(descs, ", ")
	} else {
		pc, err := net.ListenPacket("udp", cfg.TunnelListen)
		if err != nil {
			return fmt.Errorf("listen for pools: %w", err)
		}
		defer pc.Close()
		client, err := tunnel.Listen(ctx, pc, tcfg)
		if err != nil {
			return err
		}
		defer client.Close()
		client.Warm(names...)
		transport = client
		tunnels = append(tunnels, edgeTunnel{name: "dial-in", client: client})
		tunnelDesc = "pools dial in to udp " + pc.LocalAddr().String()
	}

	certs, err := loadCerts(cfg)
	if err != nil {
		return err
	}
	adm, err := newAdmin(cfg, edgeRole(cfg, results, tunnels, router), reg, log, level, stop)
	if err != nil {
		return err
	}
	srv := proxy.New(proxy.Config{
		Cache:     results,
		Databases: dbs,
		TLS:       certs.tlsConfig(),
		Transport: transport,
		Logger:    log,
		Metrics:   proxy.NewMetrics(reg),
		Insight:   adm.insight,
		Console:   adm.console,
	})
	adm.console.Attach(srv)
	pgln, myln, err := listenClients(cfg)
	if err != nil {
		return err
	}
	httpln, err := listenAs("http", cfg.HTTPListen)
	if err != nil {
		closeListeners(pgln, myln)
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	// Through the pools, which may not have connected yet (they dial in): in the background.
	checked := make(chan struct{})
	go func() { defer close(checked); checkOrigins(ctx, stdout, log, cfg, transport) }()
	defer func() { <-checked }()
	printDatabases(stdout, cfg, pgln, myln)
	fmt.Fprintf(stdout, "tunnel: %s\n", tunnelDesc)
	fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", httpln.Addr())
	log.Info("slipstream edge serving", "pg", pgln.Addr().String(), "http", httpln.Addr().String(), "tunnel", tunnelDesc)
	lc := newLifecycle(ctx, cfg, log)
	lc.serveClients(srv, handedListener{"pg", cfg.PGListen, pgln}, handedListener{"mysql", cfg.MySQLListen, myln}, handedListener{"http", cfg.HTTPListen, httpln})
	lc.apply = adm.reloading(func(next config.Config) error { return applyEdge(&cfg, next, srv, certs, log) })
	adm.controller.reload = lc.Reload // the console's RELOAD is SIGHUP's
	mux := newMux(reg, lc.ready(srv.Ready))
	lc.handleProbes(mux, lc.ready(srv.Ready))
	return lc.run(ctx, httpln, adm.handleHTTP(mux, cfg.HTTPListen), background, clientServers(srv, pgln, myln))
}

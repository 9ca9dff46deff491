package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/admin"
	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/dashboard"
	"github.com/slipstream-proxy/slipstream/insight"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/placement"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// adminParts are the admin console, the query insights and the dashboard of one command
// (serve, edge or pool), and the settings SET changes until a reload.
type adminParts struct {
	console    *admin.Console
	insight    *insight.Recorder // nil where no client connects (pool)
	controller *serveController
	level      *slog.LevelVar                // the command's log level (SET log_level)
	resizers   func() map[string][]func(int) // adminRole's

	// mu orders SET with reloads: a reload changes the configuration and the pools SET resizes.
	mu  sync.Mutex
	cur atomic.Pointer[config.Config] // the configuration in force, for SHOW CONFIG
}

// adminRole is what the console of one command knows: serve everything; an edge its clients,
// its cache and its tunnels to the pools (no origin connection: admin.RemotePool); a pool its
// origin connections, its shared cache and the edges connected.
type adminRole struct {
	// pools returns the pools as of now, given the configuration in force.
	pools func(cfg config.Config) []admin.PoolEntry
	cache *cache.Cache
	// clients: clients connect to this process; their units are kept for the query insights.
	clients   bool
	tunnels   func() []admin.Tunnel
	placement func() []admin.Placement
	// resizers returns, as of now, what sets the max_connections of each database's pools,
	// by tunnel name (SET default_pool_size); nil: no pool here.
	resizers func() map[string][]func(int)
}

// newAdmin builds the console of a command in role. level is the command's log level; stop
// ends the process (SHUTDOWN).
func newAdmin(cfg config.Config, role adminRole, reg prometheus.Registerer, log *slog.Logger, level *slog.LevelVar,
	stop context.CancelFunc) (*adminParts, error) {
	password, err := cfg.Admin.Password()
	if err != nil {
		return nil, err
	}
	a := &adminParts{controller: &serveController{stop: stop, log: log}, level: level, resizers: role.resizers}
	a.cur.Store(&cfg)
	if role.clients {
		a.insight = insight.New(insight.Config{Registerer: reg})
	}
	a.console = admin.New(admin.Config{
		AdminUsers: cfg.AdminUsers,
		StatsUsers: cfg.StatsUsers,
		Password:   password,
		Trust:      password == "" && loopback(cfg.PGListen),
		Pools:      func() []admin.PoolEntry { return role.pools(*a.cur.Load()) },
		Cache:      role.cache,
		Insight:    a.insight,
		Controller: a.controller,
		Settings:   a.settings,
		Tunnels:    role.tunnels,
		Placement:  role.placement,
		Version:    buildVersion(),
		Logger:     log,
	})
	if reg != nil {
		if err := reg.Register(a.console.Collector()); err != nil {
			return nil, fmt.Errorf("admin console metrics: %w", err)
		}
	}
	return a, nil
}

// servePools are the console's rows of the pools in og, as they are now (served.go).
func servePools(og *origins) func(config.Config) []admin.PoolEntry {
	return func(config.Config) []admin.PoolEntry { return og.consolePools() }
}

// placeAll places every database of cfg at one pool.
func placeAll(cfg config.Config, pool, region string) func() []admin.Placement {
	return func() []admin.Placement {
		var out []admin.Placement
		for _, d := range cfg.Databases {
			out = append(out, admin.Placement{Database: d.Name, Pool: pool, Region: region})
		}
		return out
	}
}

// serveRole is the console of `slipstream serve`: its pools, its cache, one in-process tunnel.
func serveRole(cfg config.Config, og *origins, results *cache.Cache) adminRole {
	return adminRole{pools: servePools(og), cache: results, clients: true, resizers: og.allResizers,
		tunnels: func() []admin.Tunnel {
			return []admin.Tunnel{{Pool: "local", Transport: "in-process", Up: true}}
		},
		placement: placeAll(cfg, "local", ""),
	}
}

// reloaded makes next the configuration SHOW CONFIG shows and undoes SET: each pool gets its
// database's max_connections again, and the log level is info. a.mu is held.
func (a *adminParts) reloaded(next config.Config) {
	a.cur.Store(&next)
	var resizers map[string][]func(int)
	if a.resizers != nil {
		resizers = a.resizers()
	}
	for _, d := range next.Databases {
		for _, set := range resizers[next.TunnelName(d)] {
			set(d.MaxConnections)
		}
	}
	a.level.Set(slog.LevelInfo)
	a.console.Reloaded()
}

// reloading wraps a command's apply (Lifecycle.apply): a configuration applied undoes SET.
func (a *adminParts) reloading(apply func(config.Config) error) func(config.Config) error {
	if apply == nil {
		return nil
	}
	return func(next config.Config) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if err := apply(next); err != nil {
			return err
		}
		a.reloaded(next)
		return nil
	}
}

// settings are SHOW CONFIG's rows for the configuration in force; default_pool_size (where
// there are pools) and log_level can be SET.
func (a *adminParts) settings() []admin.Setting {
	rows := adminSettings(*a.cur.Load())
	for i := range rows {
		if rows[i].Key == "default_pool_size" && a.resizers != nil {
			rows[i].Set = a.setPoolSize
		}
	}
	return append(rows, admin.Setting{Key: "log_level", Value: "info", Default: "info", Set: a.setLogLevel})
}

// setPoolSize is SET default_pool_size: every pool's max_connections, until a reload.
func (a *adminParts) setPoolSize(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New("want a number of connections per pool, 1 or more")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, sets := range a.resizers() {
		for _, set := range sets {
			set(n)
		}
	}
	return nil
}

// setLogLevel is SET log_level: debug, info, warn or error, until a reload.
func (a *adminParts) setLogLevel(v string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil || strings.ContainsAny(v, "+-") {
		return errors.New("want debug, info, warn or error")
	}
	a.level.Set(l)
	return nil
}

// handleHTTP adds the dashboard and /api/* to mux and returns the handler to serve: on an
// http_listen that is not loopback, the dashboard, /api/* and /debug/pprof/ need an admin
// or stats user's basic-auth credentials.
func (a *adminParts) handleHTTP(mux *http.ServeMux, httpListen string) http.Handler {
	a.console.Handle(mux)
	mux.Handle("GET /{$}", dashboard.Handler())
	return a.console.Protect(mux, loopback(httpListen))
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// adminSettings are SHOW CONFIG's rows: the settings a PgBouncer tool looks for, in
// Slipstream's terms.
func adminSettings(cfg config.Config) []admin.Setting {
	host, port, _ := net.SplitHostPort(cfg.PGListen)
	maxConns := 0 // the largest pool: what PgBouncer's tools read as the pool size
	for _, d := range cfg.Databases {
		maxConns = max(maxConns, d.MaxConnections)
	}
	if maxConns == 0 {
		maxConns = 20
	}
	return []admin.Setting{
		{Key: "listen_addr", Value: host, Default: "127.0.0.1"},
		{Key: "listen_port", Value: port, Default: "6432"},
		{Key: "pool_mode", Value: "transaction", Default: "transaction"},
		{Key: "max_client_conn", Value: "0", Default: "0"}, // no limit
		{Key: "default_pool_size", Value: strconv.Itoa(maxConns), Default: "20"},
		{Key: "max_db_connections", Value: "0", Default: "0"},
		{Key: "max_user_connections", Value: "0", Default: "0"},
		{Key: "admin_users", Value: strings.Join(cfg.AdminUsers, ","), Default: ""},
		{Key: "stats_users", Value: strings.Join(cfg.StatsUsers, ","), Default: ""},
		{Key: "mysql_listen", Value: cfg.MySQLListen, Default: "127.0.0.1:3307"},
		{Key: "http_listen", Value: cfg.HTTPListen, Default: "127.0.0.1:9432"},
		{Key: "cache_max_bytes", Value: strconv.FormatInt(cfg.Cache.MaxBytes, 10), Default: "0"},
	}
}

// serveController does RELOAD and SHUTDOWN for `slipstream serve`.
type serveController struct {
	stop context.CancelFunc
	log  *slog.Logger
	// reload is the lifecycle's Reload (SIGHUP's), set once the lifecycle exists; nil before.
	reload func() error
}

// Reload reads the configuration again as SIGHUP does (Lifecycle.Reload).
func (c *serveController) Reload() error {
	if c.reload == nil {
		return errors.New("this process is not serving yet")
	}
	return c.reload()
}

// Shutdown ends serve as SIGTERM does: the listeners stop and each session is ended; the
// WAIT_FOR_* modes are that same drain here.
func (c *serveController) Shutdown(mode admin.ShutdownMode) {
	c.log.Info("shutdown asked on the admin console", "mode", string(mode))
	c.stop()
}

// edgeTunnel is one of an edge's tunnels: to the pool named name at addr, or ("dial-in") from
// the pools that dial the edge.
type edgeTunnel struct {
	name, addr string
	client     *tunnel.Client
}

// edgeRole is the console of `slipstream edge`: its clients and cache, each database with
// the origin its pool connects to (admin.RemotePool), its tunnels, and the pool the router
// chose for each database (router nil: the pools dial in).
func edgeRole(cfg config.Config, results *cache.Cache, tunnels []edgeTunnel, router *placement.Router) adminRole {
	peer := func(name string) tunnel.Peer {
		for _, t := range tunnels {
			if t.name == name {
				return t.client.Peer()
			}
		}
		return tunnel.Peer{}
	}
	return adminRole{pools: remotePools, cache: results, clients: true,
		tunnels: func() []admin.Tunnel {
			var out []admin.Tunnel
			for _, t := range tunnels {
				p := t.client.Peer()
				addr := t.addr
				if addr == "" {
					addr = p.Addr
				}
				out = append(out, admin.Tunnel{Pool: t.name, Region: t.name, Transport: "quic", Addr: addr, RTT: p.RTT, Up: p.Up})
			}
			return out
		},
		placement: func() []admin.Placement {
			var out []admin.Placement
			for _, d := range cfg.Databases {
				region := "dial-in"
				if router != nil {
					region = router.Choice(cfg.TunnelName(d))
				}
				out = append(out, admin.Placement{Database: d.Name, Pool: region, Region: region, RTT: peer(region).RTT})
			}
			return out
		},
	}
}

// remotePools are an edge's console rows of the databases of cfg (the configuration in force,
// which a reload changes): each with the origin its pool connects to (admin.RemotePool).
func remotePools(cfg config.Config) []admin.PoolEntry {
	var pools []admin.PoolEntry
	for _, d := range cfg.Databases {
		remote := admin.RemotePool(originInfo(d))
		if d.Kind == config.KindMySQL {
			pools = append(pools, admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolMySQL, Pool: remote})
			continue
		}
		pools = append(pools, admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolPostgres, Pool: remote})
		if d.Embedded() {
			pools = append(pools, admin.PoolEntry{Name: mysqlOrigin(d.Name), Database: d.Name, Protocol: proxy.ProtocolMySQL, Pool: remote})
		}
	}
	return pools
}

// originInfo is where d's origin is, from its URL: nothing for an embedded database, which is
// in the pool's process.
func originInfo(d config.Database) pool.OriginInfo {
	if d.Embedded() {
		return pool.OriginInfo{Database: d.Name, User: d.User}
	}
	o, err := config.ParseOrigin(d.Origin)
	if err != nil {
		return pool.OriginInfo{User: d.User}
	}
	return pool.OriginInfo{Host: o.Host, Port: o.Port, Database: o.Database, User: o.User}
}

// poolRole is the console of `slipstream pool`: its pools and their origin connections, the
// cache it shares with the edges, and the edges connected, each with its sessions.
func poolRole(cfg config.Config, og *origins, shared *cache.Cache, server *tunnel.Server, prober *placement.Prober) adminRole {
	return adminRole{pools: servePools(og), cache: shared, resizers: og.allResizers,
		tunnels: func() []admin.Tunnel {
			var out []admin.Tunnel
			for _, e := range server.Edges() {
				out = append(out, admin.Tunnel{Pool: cfg.Region, Region: cfg.Region, Transport: "quic from an edge", Addr: e.Addr,
					RTT: e.RTT, Up: e.Up, Sessions: e.Sessions})
			}
			return out
		},
		placement: func() []admin.Placement {
			var out []admin.Placement
			for _, d := range cfg.Databases {
				rtt, _ := prober.Latency(cfg.TunnelName(d)) // to the origin, from here
				out = append(out, admin.Placement{Database: d.Name, Pool: cfg.Region, Region: cfg.Region, RTT: rtt})
			}
			return out
		},
	}
}

// poolConsole opens a pool's admin console on pg_listen, when it has admin or stats users: an
// edge server (package proxy) with no database, which only the console's clients can log into.
// It returns the server to run, or none.
func poolConsole(cfg config.Config, adm *adminParts, log *slog.Logger, stdout io.Writer) ([]func(context.Context) error, error) {
	if len(cfg.AdminUsers) == 0 && len(cfg.StatsUsers) == 0 {
		return nil, nil
	}
	certs, err := loadCerts(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := listenTCP(cfg.PGListen)
	if err != nil {
		return nil, fmt.Errorf("listen for admin console clients: %w", err)
	}
	srv := proxy.New(proxy.Config{TLS: certs.tlsConfig(), Transport: tunnel.NewLocal(map[string]link.Origin{}), Logger: log,
		Console: adm.console})
	fmt.Fprintf(stdout, "console: postgres://%s/slipstream\n", ln.Addr())
	return []func(context.Context) error{func(ctx context.Context) error {
		if err := srv.Serve(ctx, ln); err != nil {
			return fmt.Errorf("console: %w", err)
		}
		return nil
	}}, nil
}

package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/admin"
	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/dashboard"
	"github.com/slipstream-proxy/slipstream/insight"
	"github.com/slipstream-proxy/slipstream/proxy"
)

// adminParts are the admin console, the query insights and the dashboard of `slipstream serve`.
type adminParts struct {
	console    *admin.Console
	insight    *insight.Recorder
	controller *serveController
}

// newAdmin builds the console over the pools of og. stop ends the process (SHUTDOWN).
func newAdmin(cfg config.Config, og *origins, results *cache.Cache, reg prometheus.Registerer, log *slog.Logger,
	stop context.CancelFunc) (*adminParts, error) {
	password, err := cfg.Admin.Password()
	if err != nil {
		return nil, err
	}
	rec := insight.New(insight.Config{Registerer: reg})
	var pools []admin.PoolEntry
	var places []admin.Placement
	for _, d := range cfg.Databases {
		if p, ok := og.mypools[d.Name]; ok && d.Kind == config.KindMySQL {
			pools = append(pools, admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolMySQL, Pool: p})
			places = append(places, admin.Placement{Database: d.Name, Pool: "local"})
			continue
		}
		for _, p := range og.pools {
			if p.Name() == d.Name {
				pools = append(pools, admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolPostgres, Pool: p})
				places = append(places, admin.Placement{Database: d.Name, Pool: "local"})
			}
		}
		if p, ok := og.mypools[mysqlOrigin(d.Name)]; ok {
			pools = append(pools, admin.PoolEntry{Name: mysqlOrigin(d.Name), Database: d.Name, Protocol: proxy.ProtocolMySQL, Pool: p})
		}
	}
	ctl := &serveController{stop: stop, log: log}
	c := admin.New(admin.Config{
		AdminUsers: cfg.AdminUsers,
		StatsUsers: cfg.StatsUsers,
		Password:   password,
		Trust:      password == "" && loopback(cfg.PGListen),
		Pools:      pools,
		Cache:      results,
		Insight:    rec,
		Controller: ctl,
		Settings:   adminSettings(cfg),
		Tunnels: func() []admin.Tunnel {
			return []admin.Tunnel{{Pool: "local", Transport: "in-process", Up: true}}
		},
		Placement: func() []admin.Placement { return places },
		Version:   buildVersion(),
		Logger:    log,
	})
	return &adminParts{console: c, insight: rec, controller: ctl}, nil
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
	maxConns := 0
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

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipstream-proxy/slipstream/admin"
	"github.com/slipstream-proxy/slipstream/backend/d1"
	"github.com/slipstream-proxy/slipstream/backend/kv"
	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// serve runs the edge and the pool in one process until ctx ends.
func serve(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	level := new(slog.LevelVar) // info; SET log_level on the console changes it
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	RaiseFileLimit(log)
	if len(cfg.Databases) == 0 {
		return errors.New("no database to serve: pass --origin postgres://USER:PASSWORD@HOST:PORT/DB (or mysql://...) or a --config file with [[database]] tables")
	}
	reg := newRegistry()
	ps, og, closeServed, err := openServed(ctx, &cfg, log, reg)
	if err != nil {
		return err
	}
	defer closeServed()
	dbs, err := edgeDatabases(cfg)
	if err != nil {
		return err
	}

	certs, err := loadCerts(cfg)
	if err != nil {
		return err
	}
	results, err := cache.New(cfg.Cache.MaxBytes)
	if err != nil {
		return err
	}
	defer results.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	adm, err := newAdmin(cfg, serveRole(cfg, og, results), reg, log, level, stop)
	if err != nil {
		return err
	}
	local := tunnel.NewLocal(og.byName)
	edge := proxy.New(proxy.Config{
		Cache:     results,
		Databases: dbs,
		TLS:       certs.tlsConfig(),
		Transport: local,
		Logger:    log,
		Metrics:   proxy.NewMetrics(reg),
		Insight:   adm.insight,
		Console:   adm.console,
	})
	adm.console.Attach(edge)
	reloader := &serveReloader{cfg: cfg, og: og, local: local, edge: edge, certs: certs, log: log, ps: ps}
	apis, err := og.embeddedAPIs(cfg, edge, local, results)
	if err != nil {
		return err
	}

	pgln, myln, err := listenClients(cfg)
	if err != nil {
		return err
	}
	httpln, err := listenAs("http", cfg.HTTPListen)
	if err != nil {
		closeListeners(pgln, myln)
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	checkOrigins(ctx, stdout, log, cfg, tunnel.NewLocal(og.byName))
	printDatabases(stdout, cfg, pgln, myln)
	fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", httpln.Addr())
	logAttrs := []any{"pg", pgln.Addr().String(), "http", httpln.Addr().String(), "databases", len(dbs)}
	if myln != nil {
		logAttrs = append(logAttrs, "mysql", myln.Addr().String())
	}
	log.Info("slipstream serving", logAttrs...)

	lc := newLifecycle(ctx, cfg, log)
	lc.apply = adm.reloading(reloader.apply)
	lc.serveClients(edge, handedListener{"pg", cfg.PGListen, pgln}, handedListener{"mysql", cfg.MySQLListen, myln}, handedListener{"http", cfg.HTTPListen, httpln})
	adm.controller.reload = lc.Reload // the console's RELOAD is SIGHUP's
	mux := newMux(reg, lc.ready(edge.Ready))
	lc.handleProbes(mux, lc.ready(edge.Ready))
	apis.handle(mux)
	handler := adm.handleHTTP(mux, cfg.HTTPListen)
	return lc.run(ctx, httpln, handler, changeStreams(cfg, results, results, log, reg), clientServers(edge, pgln, myln))
}

// listenClients opens the PostgreSQL client listener, and the MySQL one when a database speaks
// MySQL: a MySQL origin, or an embedded database (D1, KV), which speaks both protocols.
func listenClients(cfg config.Config) (pgln, myln net.Listener, err error) {
	pgln, err = listenAs("pg", cfg.PGListen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen for PostgreSQL clients: %w", err)
	}
	if slices.ContainsFunc(cfg.Databases, func(d config.Database) bool { return d.Kind == config.KindMySQL || d.Embedded() }) {
		if myln, err = listenAs("mysql", cfg.MySQLListen); err != nil {
			pgln.Close()
			return nil, nil, fmt.Errorf("listen for MySQL clients: %w", err)
		}
	}
	return pgln, myln, nil
}

func closeListeners(lns ...net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			ln.Close()
		}
	}
}

// printDatabases prints each database's connection string, the line scripts and tests read.
func printDatabases(stdout io.Writer, cfg config.Config, pgln, myln net.Listener) {
	for _, d := range cfg.Databases {
		ln := pgln
		if d.Kind == config.KindMySQL {
			ln = myln
		}
		fmt.Fprintf(stdout, "database %s: %s\n", d.Name, d.ConnString(ln.Addr().String()))
		if d.Embedded() && myln != nil {
			my := d
			my.Kind = config.KindMySQL // for a mysql:// connection string
			fmt.Fprintf(stdout, "database %s (mysql): %s\n", d.Name, my.ConnString(myln.Addr().String()))
		}
	}
}

// clientServers serves PostgreSQL clients on pgln and MySQL clients on myln (when not nil).
func clientServers(edge *proxy.Server, pgln, myln net.Listener) []func(context.Context) error {
	servers := []func(context.Context) error{func(ctx context.Context) error {
		if err := edge.Serve(ctx, pgln); err != nil {
			return fmt.Errorf("edge: %w", err)
		}
		return nil
	}}
	if myln != nil {
		servers = append(servers, func(ctx context.Context) error {
			if err := edge.ServeMySQL(ctx, myln); err != nil {
				return fmt.Errorf("mysql edge: %w", err)
			}
			return nil
		})
	}
	return servers
}

// newRegistry returns a metrics registry with the Go runtime's and the process's collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// origins are the pool side of one process: a pool per configured database, and the embedded
// databases (D1, KV) behind them.
type origins struct {
	byName  map[string]link.Origin
	pools   []*pool.Pool
	mypools map[string]*mysqlpool.Pool // by the tunnel's name of the database
	retired []*mysqlpool.Pool          // pools a reload replaced in mypools, closed with the others
	d1s     map[string]*d1.DB
	kvs     map[string]*kv.Namespace
	closes  []func() error

	// For reloads: each database's pools' SetMaxConns (by tunnel name), and what opening
	// another pool needs.
	resizers    map[string][]func(int)
	reg         prometheus.Registerer
	poolMetrics *pool.Metrics
	myMetrics   *mysqlpool.Metrics
	credentials func(name string) pool.CredentialSource
	tunnelName  func(config.Database) string // config.Config.TunnelName of the configuration

	// mu guards the maps and slices above and served once the process serves: a reload
	// (open), the REST APIs (embedded.go's attach, detach) and the admin console (served.go)
	// use them from goroutines of their own.
	mu sync.Mutex
	// served are the pools the admin console lists (served.go).
	served []servedPool
	log    *slog.Logger
}

// openOrigins opens the embedded databases of cfg and a pool for every database. Nothing
// connects to an origin yet: see warm.
// credentials gives the CredentialSource of a database whose credentials rotate (PlanetScale),
// nil for the others.
func openOrigins(cfg config.Config, log *slog.Logger, reg prometheus.Registerer, credentials func(name string) pool.CredentialSource) (og *origins, err error) {
	og = &origins{byName: map[string]link.Origin{}, mypools: map[string]*mysqlpool.Pool{}, d1s: map[string]*d1.DB{}, kvs: map[string]*kv.Namespace{},
		resizers: map[string][]func(int){}, reg: reg, poolMetrics: pool.NewMetrics(reg), credentials: credentials, tunnelName: cfg.TunnelName, log: log}
	defer func() {
		if err != nil {
			og.close()
		}
	}()
	for _, d := range cfg.Databases {
		if _, err := og.open(d, log); err != nil {
			return nil, err
		}
	}
	return og, nil
}

// open opens the pool of database d (and its embedded database), adds it to og and returns
// the tunnel names it serves d under: og.tunnelName(d), and for an embedded database
// mysqlOrigin(name) too. A reload opens added databases, and databases whose origin changed,
// the same way. It holds og.mu: nothing it opens dials yet.
func (og *origins) open(d config.Database, log *slog.Logger) (names []string, err error) {
	og.mu.Lock()
	defer og.mu.Unlock()
	origin, dial := d.OriginURL(), (func(context.Context, string, string) (net.Conn, error))(nil)
	catalogRefresh := d.CatalogRefresh.Duration
	var myp *mysqlpool.Pool // an embedded database's MySQL side
	defer func() {
		if err == nil && myp != nil { // listed after its PostgreSQL side's pool
			og.serveAs(servedPool{tunnel: mysqlOrigin(d.Name), entry: admin.PoolEntry{Name: mysqlOrigin(d.Name), Database: d.Name,
				Protocol: proxy.ProtocolMySQL, Pool: myp}})
		}
	}()
	switch d.Kind {
	case config.KindMySQL:
		if og.myMetrics == nil {
			og.myMetrics = mysqlpool.NewMetrics(og.reg)
		}
		mcfg := mysqlpool.Config{
			Name:           d.Name,
			Origin:         origin,
			MaxConns:       d.MaxConnections,
			QueueTimeout:   d.QueueTimeout.Duration,
			IdleTimeout:    d.IdleTimeout.Duration,
			MaxLifetime:    d.MaxLifetime.Duration,
			CatalogRefresh: d.CatalogRefresh.Duration,
			AllowLoadLocal: d.AllowLocalInfile,
			Logger:         log,
			Metrics:        og.myMetrics,
			Credentials:    og.credentials(d.Name),
		}
		if d.AnyRole {
			return og.openMySQLRoles(d, mcfg)
		}
		p, err := mysqlpool.New(mcfg)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", d.Name, err)
		}
		name := og.tunnelName(d)
		og.retire(og.mypools[name])
		og.mypools[name] = p
		og.byName[name] = p.Origin()
		og.resizers[name] = []func(int){p.SetMaxConns}
		og.serveAs(servedPool{tunnel: name, entry: admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolMySQL, Pool: p}})
		return []string{name}, nil
	case config.KindD1, config.KindKV:
		store, err := og.openEmbeddedStore(d)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", d.Name, err)
		}
		og.closes = append(og.closes, store.Close)
		origin, dial = "postgres://slipstream@"+d.Kind+"/"+url.PathEscape(d.Name)+"?sslmode=disable", store.Dial
		catalogRefresh = -1 // SQLite has none of the catalog the cache reads, nor has KV
		if myp, err = og.addEmbeddedMySQL(d, d.Kind, store.DialMySQL, log, &og.myMetrics, og.reg); err != nil {
			return nil, err
		}
		names = append(names, mysqlOrigin(d.Name))
	}
	pcfg := og.poolConfig(d, origin, dial, catalogRefresh, og.credentials(d.Name))
	pcfg.Logger = log
	if d.AnyRole {
		return og.openRoles(d, pcfg)
	}
	p, err := pool.New(pcfg)
	if err != nil {
		return nil, err
	}
	og.pools = append(og.pools, p)
	og.byName[d.Name] = p.Origin()
	og.resizers[d.Name] = append(og.resizers[d.Name], p.SetMaxConns)
	og.serveAs(servedPool{tunnel: d.Name, entry: admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolPostgres, Pool: p}})
	return append(names, d.Name), nil
}

// mysqlOrigin is the tunnel's name for the MySQL side of an embedded database, which is served
// over both protocols under one name.
func mysqlOrigin(name string) string { return name + "#mysql" }

// addEmbeddedMySQL adds a MySQL pool for embedded database d, whose sessions dial in-process.
// og.mu is held.
func (og *origins) addEmbeddedMySQL(d config.Database, host string, dial func(context.Context, string, string) (net.Conn, error),
	log *slog.Logger, metrics **mysqlpool.Metrics, reg prometheus.Registerer) (*mysqlpool.Pool, error) {
	if *metrics == nil {
		*metrics = mysqlpool.NewMetrics(reg)
	}
	p, err := newEmbeddedMySQLPool(d, host, dial, log, *metrics)
	if err != nil {
		return nil, err
	}
	og.retire(og.mypools[mysqlOrigin(d.Name)])
	og.mypools[mysqlOrigin(d.Name)] = p
	og.byName[mysqlOrigin(d.Name)] = p.Origin()
	og.resizers[d.Name] = append(og.resizers[d.Name], p.SetMaxConns)
	return p, nil
}

// newEmbeddedMySQLPool returns the MySQL pool of embedded database d.
func newEmbeddedMySQLPool(d config.Database, host string, dial func(context.Context, string, string) (net.Conn, error),
	log *slog.Logger, metrics *mysqlpool.Metrics) (*mysqlpool.Pool, error) {
	p, err := mysqlpool.New(mysqlpool.Config{
		Name:           d.Name,
		Origin:         "mysql://slipstream@" + host + "/" + url.PathEscape(d.Name),
		Dial:           dial,
		MaxConns:       d.MaxConnections,
		QueueTimeout:   d.QueueTimeout.Duration,
		IdleTimeout:    d.IdleTimeout.Duration,
		MaxLifetime:    d.MaxLifetime.Duration,
		CatalogRefresh: -1, // an embedded database has none of the catalog the cache reads
		Logger:         log,
		Metrics:        metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", d.Name, err)
	}
	return p, nil
}

// newPool returns the pool of PostgreSQL-protocol database d, for a database created through
// the REST APIs (embedded.go); credentials is nil but for a database whose credentials rotate.
func (og *origins) newPool(d config.Database, origin string, dial func(context.Context, string, string) (net.Conn, error),
	catalogRefresh time.Duration, credentials pool.CredentialSource) (*pool.Pool, error) {
	return pool.New(og.poolConfig(d, origin, dial, catalogRefresh, credentials))
}

// poolConfig is the configuration of the pool of database d, whose origin is reached at origin
// (through dial, when set).
func (og *origins) poolConfig(d config.Database, origin string, dial func(context.Context, string, string) (net.Conn, error),
	catalogRefresh time.Duration, credentials pool.CredentialSource) pool.Config {
	return pool.Config{
		Name:           d.Name,
		Origin:         origin,
		Dial:           dial,
		MaxConns:       d.MaxConnections,
		QueueTimeout:   d.QueueTimeout.Duration,
		IdleTimeout:    d.IdleTimeout.Duration,
		MaxLifetime:    d.MaxLifetime.Duration,
		CatalogRefresh: catalogRefresh,
		Logger:         og.log,
		Metrics:        og.poolMetrics,
		Credentials:    credentials,
	}
}

// embeddedStore is an embedded database (d1.DB, kv.Namespace) as serve uses it.
type embeddedStore interface {
	Close() error
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	DialMySQL(ctx context.Context, network, addr string) (net.Conn, error)
}

// openEmbeddedStore opens the embedded database d (kind d1 or kv) at its path, and notes it in og.
func (og *origins) openEmbeddedStore(d config.Database) (embeddedStore, error) {
	if d.Kind == config.KindD1 {
		db, err := d1.Open(d.Path)
		if err == nil {
			og.d1s[d.Name] = db
		}
		return db, err
	}
	ns, err := kv.Open(d.Path)
	if err == nil {
		og.kvs[d.Name] = ns
	}
	return ns, err
}

// retire keeps p, a MySQL pool a reload replaced (nil: none), for close: the sessions open on
// it go on until they end. og.mu is held.
func (og *origins) retire(p *mysqlpool.Pool) {
	if p != nil {
		og.retired = append(og.retired, p)
	}
}

// close closes the pools, then the embedded databases behind them.
func (og *origins) close() {
	for _, p := range og.pools {
		p.Close()
	}
	for _, p := range og.retired {
		p.Close()
	}
	for _, p := range og.mypools {
		p.Close()
	}
	for i := len(og.closes) - 1; i >= 0; i-- {
		og.closes[i]()
	}
}

// edgeDatabases are the databases the edge lets clients into, with their credentials and
// caching policy.
func edgeDatabases(cfg config.Config) ([]proxy.Database, error) {
	var dbs []proxy.Database
	for _, d := range cfg.Databases {
		caching := proxy.Caching{Disabled: d.Caching.Disabled, MaxAge: d.Caching.MaxAge.Duration,
			StaleWhileRevalidate: d.Caching.StaleWhileRevalidate.Duration, MaxResultBytes: int(d.Caching.MaxResultBytes)}
		if d.Kind == config.KindMySQL {
			db := proxy.Database{Name: d.Name, User: d.User, Password: d.Password, Protocol: proxy.ProtocolMySQL,
				MySQLAuth: d.AuthMethod, AllowLocalInfile: d.AllowLocalInfile, Caching: caching,
				AnyRole: d.AnyRole, AuthCacheTTL: d.AuthCacheTTL.Duration}
			if tn := cfg.TunnelName(d); tn != d.Name {
				db.Origin = tn // a PostgreSQL database has its name
			}
			if d.AuthMethod == "trust" {
				db.Auth, db.MySQLAuth = pgwire.AuthTrust, ""
			}
			dbs = append(dbs, db)
			continue
		}
		auth, err := pgwire.ParseAuthMethod(d.AuthMethod)
		if err != nil {
			return nil, err
		}
		if d.Kind == config.KindKV {
			// Expiration runs on the clock: a cached read could outlive its key.
			caching.Disabled = true
		}
		dbs = append(dbs, proxy.Database{Name: d.Name, User: d.User, Password: d.Password, Auth: auth, Caching: caching,
			AnyRole: d.AnyRole, AuthCacheTTL: d.AuthCacheTTL.Duration})
		if d.Embedded() {
			// Served to MySQL clients too, under the same name and credentials.
			my := proxy.Database{Name: d.Name, User: d.User, Password: d.Password, Protocol: proxy.ProtocolMySQL,
				Origin: mysqlOrigin(d.Name), MySQLAuth: "caching_sha2_password", Caching: proxy.Caching{Disabled: true}}
			if auth == pgwire.AuthTrust {
				my.Auth, my.MySQLAuth = pgwire.AuthTrust, ""
			}
			dbs = append(dbs, my)
		}
	}
	return dbs, nil
}

// newMux serves /metrics, /healthz (503 once ready reports false) and /debug/pprof.
func newMux(reg *prometheus.Registry, ready func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	// Profiles, for measuring the proxy under load (go tool pprof http://ADDR/debug/pprof/profile).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

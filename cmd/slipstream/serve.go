package main

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
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipstream-proxy/slipstream/backend/d1"
	"github.com/slipstream-proxy/slipstream/backend/kv"
	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// serve runs the edge and the pool in one process until ctx ends.
func serve(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(cfg.Databases) == 0 {
		return errors.New("no database to serve: pass --origin postgres://USER:PASSWORD@HOST:PORT/DB or a --config file with [[database]] tables")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	poolMetrics := pool.NewMetrics(reg)

	pools := make(map[string]*pool.Pool)
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	var dbs []proxy.Database
	d1s, kvs := map[string]*d1.DB{}, map[string]*kv.Namespace{}
	for _, d := range cfg.Databases {
		origin, dial := d.OriginURL(), (func(context.Context, string, string) (net.Conn, error))(nil)
		switch d.Kind {
		case config.KindD1:
			db, err := d1.Open(d.Path)
			if err != nil {
				return fmt.Errorf("database %s: %w", d.Name, err)
			}
			defer db.Close()
			d1s[d.Name] = db
			origin, dial = "postgres://slipstream@d1/"+url.PathEscape(d.Name)+"?sslmode=disable", db.Dial
		case config.KindKV:
			ns, err := kv.Open(d.Path)
			if err != nil {
				return fmt.Errorf("database %s: %w", d.Name, err)
			}
			defer ns.Close()
			kvs[d.Name] = ns
			origin, dial = "postgres://slipstream@kv/"+url.PathEscape(d.Name)+"?sslmode=disable", ns.Dial
			// Expiration runs on the clock: a cached read could outlive its key.
			d.Caching.Disabled = true
		}
		p, err := pool.New(pool.Config{
			Name:         d.Name,
			Origin:       origin,
			Dial:         dial,
			MaxConns:     d.MaxConnections,
			QueueTimeout: d.QueueTimeout.Duration,
			IdleTimeout:  d.IdleTimeout.Duration,
			MaxLifetime:  d.MaxLifetime.Duration,
			Logger:       log,
			Metrics:      poolMetrics,
		})
		if err != nil {
			return err
		}
		pools[d.Name] = p
		auth, err := pgwire.ParseAuthMethod(d.AuthMethod)
		if err != nil {
			return err
		}
		dbs = append(dbs, proxy.Database{Name: d.Name, User: d.User, Password: d.Password, Auth: auth,
			Caching: proxy.Caching{Disabled: d.Caching.Disabled, MaxAge: d.Caching.MaxAge.Duration,
				StaleWhileRevalidate: d.Caching.StaleWhileRevalidate.Duration, MaxResultBytes: int(d.Caching.MaxResultBytes)}})
	}

	cert, err := pgwire.LoadOrCreateCertificate(cfg.TLS.CertFile, cfg.TLS.KeyFile, filepath.Join(cfg.DataDir, "tls"))
	if err != nil {
		return err
	}
	results, err := cache.New(cfg.Cache.MaxBytes)
	if err != nil {
		return err
	}
	defer results.Close()
	edge := proxy.New(proxy.Config{
		Cache:     results,
		Databases: dbs,
		TLS:       pgwire.ServerTLSConfig(cert),
		Transport: tunnel.NewLocal(pools),
		Logger:    log,
		Metrics:   proxy.NewMetrics(reg),
	})

	pgln, err := net.Listen("tcp", cfg.PGListen)
	if err != nil {
		return fmt.Errorf("listen for PostgreSQL clients: %w", err)
	}
	httpln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		pgln.Close()
		return fmt.Errorf("listen for HTTP: %w", err)
	}

	// Learn each origin's profile now, so the first client's startup needs no origin round trip.
	for _, p := range pools {
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if _, err := p.Profile(wctx); err != nil && ctx.Err() == nil {
				log.Warn("origin not reachable yet; clients will retry it", "db", p.Name())
			}
		}()
	}

	for _, d := range cfg.Databases {
		fmt.Fprintf(stdout, "database %s: %s\n", d.Name, d.ConnString(pgln.Addr().String()))
	}
	fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", httpln.Addr())
	log.Info("slipstream serving", "pg", pgln.Addr().String(), "http", httpln.Addr().String(), "databases", len(dbs))

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// D1's query API and Workers KV's REST API, for the embedded databases. A D1 write through
	// HTTP invalidates the database's cached reads before its answer goes out.
	mux.Handle("/accounts/{account}/d1/", invalidating(d1.NewHTTPAPI(d1s, cfg.APIToken), results))
	mux.Handle("/accounts/{account}/storage/kv/", kv.NewHTTPAPI(kvs, cfg.APIToken))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !edge.Ready() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	// Profiles, for measuring the proxy under load (go tool pprof http://ADDR/debug/pprof/profile).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := hs.Serve(httpln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	ectx, stopEdge := context.WithCancel(ctx)
	defer stopEdge()
	go func() {
		defer wg.Done()
		if err := edge.Serve(ectx, pgln); err != nil {
			errc <- fmt.Errorf("edge: %w", err)
		}
	}()

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	log.Info("slipstream stopping")
	stopEdge()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	wg.Wait()
	return err
}

// invalidating wraps D1's HTTP API: a POST to /accounts/A/d1/database/NAME/query may write, so
// the database's cached reads are invalidated before the answer is written.
func invalidating(h http.Handler, results *cache.Cache) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if parts := strings.Split(r.URL.Path, "/"); len(parts) > 5 {
				w = &invalidateBeforeWrite{ResponseWriter: w, invalidate: func() { results.Invalidate(parts[5], nil, true) }}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// invalidateBeforeWrite runs invalidate once, before the response's header goes out.
type invalidateBeforeWrite struct {
	http.ResponseWriter
	invalidate func()
	done       bool
}

func (w *invalidateBeforeWrite) WriteHeader(code int) {
	if !w.done {
		w.done = true
		w.invalidate()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *invalidateBeforeWrite) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

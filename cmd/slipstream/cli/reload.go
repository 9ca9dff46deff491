package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"

	tlscerts "github.com/slipstream-proxy/slipstream/certs"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/proxy"
)

// certHolder is the client listeners' TLS certificate, which a reload replaces: handshakes
// from then on present the new one, sessions already encrypted keep theirs.
type certHolder struct {
	cur atomic.Pointer[tls.Certificate]
}

// loadCerts reads cfg's certificate, or the self-signed one in DataDir/tls (created on first
// start).
func loadCerts(cfg config.Config) (*certHolder, error) {
	h := &certHolder{}
	return h, h.load(cfg)
}

func (h *certHolder) load(cfg config.Config) error {
	cert, err := tlscerts.LoadOrCreate(cfg.TLS.CertFile, cfg.TLS.KeyFile, filepath.Join(cfg.DataDir, "tls"))
	if err != nil {
		return err
	}
	h.cur.Store(&cert)
	return nil
}

// tlsConfig is pgwire.ServerTLSConfig with the certificate taken from h at each handshake.
func (h *certHolder) tlsConfig() *tls.Config {
	c := pgwire.ServerTLSConfig(tls.Certificate{})
	c.Certificates = nil
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cur.Load(), nil }
	return c
}

// restartOnly names the settings a reload cannot change in a running process; a change to
// one of them is logged and waits for the next start.
func restartOnly(cur, next config.Config) []string {
	var changed []string
	for _, s := range []struct {
		name     string
		was, now any
	}{
		{"pg_listen", cur.PGListen, next.PGListen},
		{"mysql_listen", cur.MySQLListen, next.MySQLListen},
		{"http_listen", cur.HTTPListen, next.HTTPListen},
		{"data_dir", cur.DataDir, next.DataDir},
		{"cache.max_bytes", cur.Cache.MaxBytes, next.Cache.MaxBytes},
		{"api_token", cur.APIToken, next.APIToken},
		{"shutdown_min_delay", cur.ShutdownMinDelay, next.ShutdownMinDelay},
		{"shutdown_timeout", cur.ShutdownTimeout, next.ShutdownTimeout},
		{"tunnel_listen", cur.TunnelListen, next.TunnelListen},
		{"certs_dir", cur.CertsDir, next.CertsDir},
	} {
		if s.was != s.now {
			changed = append(changed, s.name)
		}
	}
	if !slices.Equal(cur.Pools, next.Pools) || !slices.Equal(cur.DialEdges, next.DialEdges) {
		changed = append(changed, "pool/dial_edge")
	}
	return changed
}

// serveReloader applies a configuration read again to a running `slipstream serve`, or, with
// no edge, to a running `slipstream pool`.
type serveReloader struct {
	cfg   config.Config // the running configuration; only apply changes it
	og    *origins
	local originRoutes
	edge  *proxy.Server // nil: a pool, which has no clients of its own and no certificate
	certs *certHolder
	log   *slog.Logger
	ps    *planetScales // the PlanetScale databases' credentials and replicas (psreload.go)
	// opened, when set, is told of each pool a reload opens, by tunnel name, and returns the
	// origin to route to it (the pool's, measured by its prober).
	opened func(name string, o link.Origin) link.Origin
}

// originRoutes is where a reload sets the databases' origins: the in-process tunnel
// (tunnel.Local, serve) or the pool end of the QUIC tunnel (tunnel.Server, pool).
type originRoutes interface {
	Set(db string, o link.Origin)
	Delete(db string)
}

// originChanged reports whether a database's pool must be replaced to apply next: anything
// the pool was opened with, except its size, which SetMaxConns changes in place.
func originChanged(cur, next config.Database) bool {
	cur.MaxConnections, next.MaxConnections = 0, 0
	cur.Caching, next.Caching = config.Caching{}, config.Caching{}
	cur.User, next.User, cur.Password, next.Password, cur.AuthMethod, next.AuthMethod = "", "", "", "", "", ""
	cur.PasswordFile, next.PasswordFile, cur.PoolRegion, next.PoolRegion = "", "", "", ""
	cur.ReplicaReads, next.ReplicaReads = false, false // PlanetScale's replicas: reattachReplicas
	cur.ReadYourWrites, next.ReadYourWrites = config.Duration{}, config.Duration{}
	return cur != next
}

// apply makes next the running configuration, in two steps: everything that can fail (the
// certificate, the databases' client settings, new pools) first, so that a failure changes
// nothing; then the swap, which cannot fail.
//
//   - an added database: a new pool, then clients may log in;
//   - a removed one: new clients get 3D000 (1049 for MySQL), its open sessions end at their
//     next request boundary (proxy.Server.DrainDatabase); its pool stays open for them and
//     its idle connections are closed after idle_timeout;
//   - a changed origin (URL, credentials, timeouts): a new pool for new sessions, while open
//     sessions finish on the old one;
//   - a changed max_connections: the pool is resized in place (pool.Slots.SetMaxConns);
//   - users, passwords, auth methods, caching: new logins and sessions get the new ones;
//   - the TLS certificate is read again, whether or not its path changed (rotation).
func (r *serveReloader) apply(next config.Config) error {
	if changed := restartOnly(r.cfg, next); len(changed) > 0 {
		r.log.Warn("reload: these settings take effect at the next start only", "settings", changed)
	}
	if err := r.ps.reloading(&next, r.og.reg); err != nil {
		return err
	}
	certs := &certHolder{}
	var dbs []proxy.Database
	if r.edge != nil {
		if err := certs.load(next); err != nil {
			return err
		}
		var err error
		if dbs, err = edgeDatabases(next); err != nil {
			return err
		}
	}
	// By tunnel name: a PostgreSQL and a MySQL database may share a name.
	curByName := map[string]config.Database{}
	for _, d := range r.cfg.Databases {
		curByName[r.cfg.TunnelName(d)] = d
	}
	r.og.tunnelName = next.TunnelName
	type opened struct {
		d     config.Database
		names []string
	}
	var opens []opened
	var resize []config.Database
	for _, d := range next.Databases {
		cur, ok := curByName[next.TunnelName(d)]
		switch {
		case ok && cur.Embedded() && cur.Kind == d.Kind && cur.Path == d.Path:
			// The embedded database stays open; only its size can change.
		case !ok || originChanged(cur, d):
			names, err := r.og.open(d, r.log)
			if err != nil {
				return errors.Join(err, errors.New("(pools opened for this reload stay unused until the process ends)"))
			}
			opens = append(opens, opened{d, names})
			continue
		}
		if cur.MaxConnections != d.MaxConnections {
			resize = append(resize, d)
		}
	}

	// The swap.
	if r.edge != nil {
		r.certs.cur.Store(certs.cur.Load())
	}
	for _, o := range opens {
		for _, name := range o.names {
			origin := r.og.origin(name)
			if r.opened != nil {
				origin = r.opened(name, origin)
			}
			r.local.Set(name, origin)
		}
		r.log.Info("reload: database opened", "db", o.d.Name, "origin", config.RedactURL(o.d.Origin))
	}
	for _, d := range resize {
		for _, set := range r.og.resizersOf(next.TunnelName(d)) {
			set(d.MaxConnections)
		}
		r.log.Info("reload: pool resized", "db", d.Name, "max_connections", d.MaxConnections)
	}
	if r.edge != nil {
		r.edge.SetDatabases(dbs)
	}
	for name, d := range curByName {
		if slices.ContainsFunc(next.Databases, func(n config.Database) bool { return next.TunnelName(n) == name }) {
			continue
		}
		r.local.Delete(name)
		r.og.unserve(name)
		if d.Embedded() {
			r.local.Delete(mysqlOrigin(d.Name))
			r.og.unserve(mysqlOrigin(d.Name))
		}
		if r.edge == nil {
			r.log.Info("reload: database removed; sessions open on it go on, new ones are refused", "db", d.Name)
			continue
		}
		r.edge.DrainDatabase(d.Name)
		r.log.Info("reload: database removed; its sessions end at their next request boundary", "db", d.Name)
	}
	r.cfg = next
	r.ps.reloaded(next, r.og)
	return nil
}

// applyEdge applies a configuration read again to a running `slipstream edge`: the databases'
// client settings (added, removed and drained, credentials, caching) and the TLS
// certificate. Which pool serves a database is the router's, not the file's.
func applyEdge(cur *config.Config, next config.Config, srv *proxy.Server, certs *certHolder, log *slog.Logger) error {
	if changed := restartOnly(*cur, next); len(changed) > 0 {
		log.Warn("reload: these settings take effect at the next start only", "settings", changed)
	}
	fresh := &certHolder{}
	if err := fresh.load(next); err != nil {
		return err
	}
	dbs, err := edgeDatabases(next)
	if err != nil {
		return fmt.Errorf("databases: %w", err)
	}
	certs.cur.Store(fresh.cur.Load())
	srv.SetDatabases(dbs)
	for _, d := range cur.Databases {
		if !slices.ContainsFunc(next.Databases, func(n config.Database) bool { return n.Name == d.Name }) {
			srv.DrainDatabase(d.Name)
		}
	}
	*cur = next
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"

	"github.com/slipstream-proxy/slipstream/admin"
	"github.com/slipstream-proxy/slipstream/backend/d1"
	"github.com/slipstream-proxy/slipstream/backend/kv"
	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/pool"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
	"github.com/slipstream-proxy/slipstream/proxy"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// The REST APIs of the embedded databases (D1's, Workers KV's), and the hook through which a
// database they create is served at once: a pool per protocol, the in-process tunnel's origins,
// and the edge's entries, under the credentials of a configured database of its kind.

// apis are the handlers of the REST APIs of one `slipstream serve`.
type apis struct {
	d1, kv http.Handler
}

// handle mounts the APIs on mux.
func (a apis) handle(mux *http.ServeMux) {
	mux.Handle("/accounts/{account}/d1/", a.d1)
	mux.Handle(d1.TransferPrefix, a.d1)
	mux.Handle("/accounts/{account}/storage/kv/", a.kv)
}

// attacher serves databases created through the APIs.
type attacher struct {
	og      *origins
	edge    *proxy.Server
	local   *tunnel.Local
	results *cache.Cache
	cfg     config.Config
}

// embeddedAPIs builds the catalogs of the embedded databases (the configured ones, and those
// created through the APIs in an earlier run, which it serves again) and their APIs. New
// databases live in DataDir/d1 and DataDir/kv.
func (og *origins) embeddedAPIs(cfg config.Config, edge *proxy.Server, local *tunnel.Local, results *cache.Cache) (apis, error) {
	at := &attacher{og: og, edge: edge, local: local, results: results, cfg: cfg}
	d1s := d1.NewCatalog(d1.CatalogConfig{
		Dir:    filepath.Join(cfg.DataDir, "d1"),
		Attach: func(name string, db *d1.DB) error { return at.attach(config.KindD1, name, db.Dial, db.DialMySQL) },
		Detach: at.detach,
	})
	kvs := kv.NewCatalog(kv.CatalogConfig{
		Dir: filepath.Join(cfg.DataDir, "kv"),
		Attach: func(title string, ns *kv.Namespace) error {
			return at.attach(config.KindKV, title, ns.Dial, ns.DialMySQL)
		},
		Detach: at.detach,
	})
	for name, db := range og.d1s {
		d1s.Add(name, db)
	}
	for name, ns := range og.kvs {
		kvs.Add(name, ns)
	}
	// The catalogs close what they open, after the pools in front of it.
	og.mu.Lock()
	og.closes = append(og.closes, func() error { d1s.Close(); kvs.Close(); return nil })
	og.mu.Unlock()
	if err := d1s.Load(); err != nil {
		return apis{}, err
	}
	if err := kvs.Load(); err != nil {
		return apis{}, err
	}
	return apis{
		d1: d1.NewHTTPAPI(d1.HTTPConfig{Catalog: d1s, Token: cfg.APIToken, Invalidate: func(name string) {
			results.Invalidate(name, nil, true)
		}}),
		kv: kv.NewHTTPAPI(kv.HTTPConfig{Catalog: kvs, Token: cfg.APIToken}),
	}, nil
}

// template is the configured database whose credentials and limits a new database of kind
// takes: the first of its kind, else the first embedded one.
func (at *attacher) template(kind string) (config.Database, bool) {
	i := slices.IndexFunc(at.cfg.Databases, func(d config.Database) bool { return d.Kind == kind })
	if i < 0 {
		i = slices.IndexFunc(at.cfg.Databases, config.Database.Embedded)
	}
	if i < 0 {
		return config.Database{}, false
	}
	return at.cfg.Databases[i], true
}

type dialFunc = func(context.Context, string, string) (net.Conn, error)

// attach serves a new embedded database under name over both protocols.
func (at *attacher) attach(kind, name string, dial, dialMySQL dialFunc) error {
	d, ok := at.template(kind)
	if !ok {
		return errors.New("no embedded database is configured whose credentials a new one could take")
	}
	d.Name, d.Kind, d.Path = name, kind, ""
	p, err := at.og.newPool(d, "postgres://slipstream@"+kind+"/"+url.PathEscape(name)+"?sslmode=disable", dial, -1, nil)
	if err != nil {
		return fmt.Errorf("database %s: %w", name, err)
	}
	at.og.mu.Lock()
	if at.og.myMetrics == nil {
		at.og.myMetrics = mysqlpool.NewMetrics(at.og.reg)
	}
	metrics := at.og.myMetrics
	at.og.mu.Unlock()
	myp, err := newEmbeddedMySQLPool(d, kind, dialMySQL, at.og.log, metrics)
	if err != nil {
		p.Close()
		return err
	}
	if err := at.local.Add(name, p.Origin()); err != nil {
		p.Close()
		myp.Close()
		return errors.New("a database named " + name + " is served already")
	}
	if err := at.local.Add(mysqlOrigin(name), myp.Origin()); err != nil {
		at.local.Remove(name)
		p.Close()
		myp.Close()
		return errors.New("a database named " + name + " is served already")
	}
	dbs, err := edgeDatabases(config.Config{Databases: []config.Database{d}})
	for i := 0; err == nil && i < len(dbs); i++ {
		err = at.edge.AddDatabase(dbs[i])
	}
	if err != nil {
		at.edge.RemoveDatabase(name)
		at.local.Remove(name)
		at.local.Remove(mysqlOrigin(name))
		p.Close()
		myp.Close()
		return errors.New("a database named " + name + " is served already")
	}
	at.og.mu.Lock()
	at.og.pools = append(at.og.pools, p)
	at.og.mypools[mysqlOrigin(name)] = myp
	at.og.resizers[name] = []func(int){p.SetMaxConns, myp.SetMaxConns}
	at.og.serveAs(servedPool{tunnel: name, entry: admin.PoolEntry{Name: name, Database: name, Protocol: proxy.ProtocolPostgres, Pool: p}})
	at.og.serveAs(servedPool{tunnel: mysqlOrigin(name), entry: admin.PoolEntry{Name: mysqlOrigin(name), Database: name,
		Protocol: proxy.ProtocolMySQL, Pool: myp}})
	at.og.mu.Unlock()
	return nil
}

// detach stops serving a database that attach served; its cached reads go with it.
func (at *attacher) detach(name string) {
	at.edge.RemoveDatabase(name)
	at.local.Remove(name)
	at.local.Remove(mysqlOrigin(name))
	at.og.mu.Lock()
	var gone []interface{ Close() }
	at.og.pools = slices.DeleteFunc(at.og.pools, func(p *pool.Pool) bool {
		if p.Name() == name {
			gone = append(gone, p)
			return true
		}
		return false
	})
	if p := at.og.mypools[mysqlOrigin(name)]; p != nil {
		gone = append(gone, p)
		delete(at.og.mypools, mysqlOrigin(name))
	}
	delete(at.og.resizers, name)
	at.og.mu.Unlock()
	at.og.unserve(name, mysqlOrigin(name))
	for _, p := range gone {
		p.Close()
	}
	at.results.Invalidate(name, nil, true)
}

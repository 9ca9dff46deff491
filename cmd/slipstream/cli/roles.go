package cli

import (
	"fmt"

	"github.com/slipstream-proxy/slipstream/admin"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/pool"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
	"github.com/slipstream-proxy/slipstream/proxy"
)

// openRoles opens the pools of a PostgreSQL database that lets any role log in (any_role): the
// base pool of the origin URL's user, which og lists with the other pools (the admin console,
// reloads, resizing), and a pool per role, made as roles log in, which the console lists after
// it (served.go). og.mu is held.
func (og *origins) openRoles(d config.Database, pcfg pool.Config) ([]string, error) {
	r, err := pool.NewRoles(pcfg, pool.RolesConfig{AuthQuery: d.AuthQuery, CacheTTL: d.AuthCacheTTL.Duration,
		MaxDBConns: d.MaxDBConnections})
	if err != nil {
		return nil, err
	}
	og.pools = append(og.pools, r.Base())
	og.closes = append(og.closes, func() error { r.Close(); return nil })
	og.byName[d.Name] = r.Origin()
	og.resizers[d.Name] = append(og.resizers[d.Name], r.SetMaxConns)
	og.serveAs(servedPool{tunnel: d.Name, roles: r,
		entry: admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolPostgres, Pool: r.Base()}})
	return []string{d.Name}, nil
}

// openMySQLRoles opens the pools of a MySQL database that lets any user log in (any_role), as
// openRoles does for PostgreSQL: the base pool is listed with the other MySQL pools (the users'
// pools are not in the console yet). og.mu is held.
func (og *origins) openMySQLRoles(d config.Database, mcfg mysqlpool.Config) ([]string, error) {
	r, err := mysqlpool.NewRoles(mcfg, mysqlpool.RolesConfig{AuthQuery: d.AuthQuery, CacheTTL: d.AuthCacheTTL.Duration,
		MaxDBConns: d.MaxDBConnections})
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", d.Name, err)
	}
	name := og.tunnelName(d)
	og.retire(og.mypools[name])
	og.mypools[name] = r.Base()
	og.closes = append(og.closes, func() error { r.Close(); return nil })
	og.byName[name] = r.Origin()
	og.resizers[name] = []func(int){r.SetMaxConns}
	og.serveAs(servedPool{tunnel: name, entry: admin.PoolEntry{Name: d.Name, Database: d.Name, Protocol: proxy.ProtocolMySQL, Pool: r.Base()}})
	return []string{name}, nil
}

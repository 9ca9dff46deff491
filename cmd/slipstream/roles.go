package main

import (
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/pool"
)

// openRoles opens the pools of a PostgreSQL database that lets any role log in (any_role): the
// base pool of the origin URL's user, which og lists with the other pools (the admin console,
// reloads, resizing), and a pool per role, made as roles log in.
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
	return []string{d.Name}, nil
}

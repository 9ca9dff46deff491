package cli

import (
	"context"
	"log/slog"
	"slices"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slipstream-proxy/slipstream/admin"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
)

// The pools an origins serves as the admin console lists them (SHOW POOLS, SHOW DATABASES,
// SHOW STATS, the dashboard, slipstream_pool_*): one list, written under og.mu by whatever
// opens or drops a pool (the start, a reload, the REST APIs' attach and detach) and read under
// it by the console.

// servedPool is one pool og serves.
type servedPool struct {
	// tunnel is the tunnel's name of the database side it serves (og.byName's key), by which
	// a reload or a REST delete drops it.
	tunnel string
	entry  admin.PoolEntry
	// roles, for a database that lets any role in (any_role), are its roles' pools, listed
	// after entry (the base pool, of the origin URL's user), one per role logged in.
	roles *pool.Roles
}

// serveAs lists sp, in the place of the pool it replaces (a reload's new pool for a changed
// origin) or last. og.mu is held.
func (og *origins) serveAs(sp servedPool) {
	if i := slices.IndexFunc(og.served, func(s servedPool) bool { return s.tunnel == sp.tunnel }); i >= 0 {
		og.served[i] = sp
		return
	}
	og.served = append(og.served, sp)
}

// unserve drops the pools served under the tunnel names from the list; the pools themselves
// stay open for the sessions on them.
func (og *origins) unserve(tunnels ...string) {
	og.mu.Lock()
	defer og.mu.Unlock()
	og.served = slices.DeleteFunc(og.served, func(s servedPool) bool { return slices.Contains(tunnels, s.tunnel) })
}

// consolePools returns the pools served as of now, in the order they were opened, each
// any_role database's roles' pools after its own, by role name.
func (og *origins) consolePools() []admin.PoolEntry {
	og.mu.Lock()
	served := slices.Clone(og.served)
	og.mu.Unlock()
	out := make([]admin.PoolEntry, 0, len(served))
	for _, sp := range served {
		out = append(out, sp.entry)
		if sp.roles == nil {
			continue
		}
		byRole := sp.roles.RolePools()
		roles := make([]string, 0, len(byRole))
		for role := range byRole {
			roles = append(roles, role)
		}
		sort.Strings(roles)
		for _, role := range roles {
			e := sp.entry
			e.User, e.Pool = role, byRole[role]
			out = append(out, e)
		}
	}
	return out
}

// origin returns the origin served under tunnel name.
func (og *origins) origin(name string) link.Origin {
	og.mu.Lock()
	defer og.mu.Unlock()
	return og.byName[name]
}

// allResizers returns the SetMaxConns of every database's pools, by tunnel name (SET
// default_pool_size): the configured databases', those a reload opened and those the REST
// APIs created.
func (og *origins) allResizers() map[string][]func(int) {
	og.mu.Lock()
	defer og.mu.Unlock()
	out := make(map[string][]func(int), len(og.resizers))
	for name, sets := range og.resizers {
		out[name] = slices.Clone(sets)
	}
	return out
}

// mysqlPool returns the MySQL pool served under tunnel name, or nil.
func (og *origins) mysqlPool(name string) *mysqlpool.Pool {
	og.mu.Lock()
	defer og.mu.Unlock()
	return og.mypools[name]
}

// mysqlMetrics returns the MySQL pools' metrics, nil before a MySQL pool was opened.
func (og *origins) mysqlMetrics() *mysqlpool.Metrics {
	og.mu.Lock()
	defer og.mu.Unlock()
	return og.myMetrics
}

// resizersOf returns the SetMaxConns of the pools of the database served under tunnel name.
func (og *origins) resizersOf(name string) []func(int) {
	og.mu.Lock()
	defer og.mu.Unlock()
	return slices.Clone(og.resizers[name])
}

// openServed opens what serve and pool both serve: PlanetScale's credentials (which may
// rewrite cfg's planetscale:// origins), every database's pools, and PlanetScale's replica
// pools. closeAll closes the pools, then deletes the credentials, which no connection uses
// any more.
func openServed(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (ps *planetScales, og *origins, closeAll func(), err error) {
	if ps, err = startPlanetScale(ctx, cfg, log, reg); err != nil {
		return nil, nil, nil, err
	}
	if og, err = openOrigins(*cfg, log, reg, ps.credentials); err != nil {
		ps.close()
		return nil, nil, nil, err
	}
	closeAll = func() {
		og.close()
		ps.close()
	}
	if err := ps.attachReplicas(ctx, *cfg, og); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return ps, og, closeAll, nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/planetscale"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
)

// psReplica is the replica reads of one PlanetScale MySQL database as attached: the replica
// credential's rotator, the pool of connections to the replicas, the database's pool that
// sends them reads, and the settings they were made with.
type psReplica struct {
	rotator *planetscale.Rotator
	pool    *mysqlpool.Pool
	primary *mysqlpool.Pool
	d       config.Database // what the replica pool was opened with (replicaSettings)
}

// psReplicas are the replica reads of a process's PlanetScale databases, by database name.
type psReplicas struct {
	mu       sync.Mutex
	attached map[string]*psReplica
	metrics  *mysqlpool.ReplicaMetrics // registered once, shared by every database and reload
	// detached are replicas a reload turned off or replaced whose credential is not deleted
	// yet: it is once their last connection has closed (drain), or at shutdown.
	detached map[*psReplica]bool
	wg       sync.WaitGroup // the drains
	done     chan struct{}  // closed at shutdown: the drains stop waiting
}

// attachReplicas gives every PlanetScale MySQL database with replica_reads its replicas, when
// serve (or pool) starts: see attachReplica. Errors are startupErrors.
func (ps *planetScales) attachReplicas(ctx context.Context, cfg config.Config, og *origins) error {
	for _, d := range cfg.Databases {
		if err := ps.attachReplica(ctx, d, og); err != nil {
			return startupError{err}
		}
	}
	return nil
}

// attachReplica gives a PlanetScale MySQL database with replica_reads its replicas: it mints a
// replica credential (role reader, rotated like the primary's), opens a pool to the host that
// credential names, and makes it the replica pool of the database's pool, which sends there
// the reads the edge routes (link.ReplicaRouter: proxy in serve's process, or across the
// tunnel for `slipstream pool`). It does nothing for any other database.
func (ps *planetScales) attachReplica(ctx context.Context, d config.Database, og *origins) error {
	// startPlanetScale has rewritten the origins of PlanetScale databases: apis knows them.
	api, ok := ps.apis[d.Name]
	p := og.mysqlPool(og.tunnelName(d))
	if !ok || !d.ReplicaReads || p == nil {
		return nil // Validate refused replica_reads for a Postgres branch
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	r, err := planetscale.StartRotator(rctx, planetscale.RotatorConfig{Client: api.client, Target: api.target, DB: d.Name,
		Role: planetscale.RoleReader, Replica: true, TTL: d.CredentialTTL.Duration, Logger: ps.log, Metrics: ps.metrics})
	cancel()
	if err != nil {
		return fmt.Errorf("database %s: replica_reads: %w", d.Name, err)
	}
	rp, err := mysqlpool.New(mysqlpool.Config{
		Name:           d.Name + "@replica",
		Origin:         psOriginURL(api.target.Kind, r.Current()),
		MaxConns:       d.MaxConnections,
		QueueTimeout:   d.QueueTimeout.Duration,
		IdleTimeout:    d.IdleTimeout.Duration,
		MaxLifetime:    d.MaxLifetime.Duration,
		CatalogRefresh: -1, // the primary's catalog is the one edges learn
		Logger:         ps.log.With("replica", true),
		Metrics:        og.mysqlMetrics(),
		Credentials:    r.Source,
	})
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return errors.Join(fmt.Errorf("database %s: replica_reads: %w", d.Name, err), r.Close(dctx))
	}
	reps := &ps.reps
	reps.mu.Lock()
	if reps.metrics == nil {
		reps.metrics = mysqlpool.NewReplicaMetrics(og.reg)
	}
	reps.attached[d.Name] = &psReplica{rotator: r, pool: rp, primary: p, d: d}
	reps.mu.Unlock()
	p.SetReplica(mysqlpool.Replica{Pool: rp, ReadYourWrites: d.ReadYourWrites.Duration, Metrics: reps.metrics})
	ps.log.Info("planetscale replica reads on", "db", d.Name, "host", r.Current().Host, "read_your_writes", d.ReadYourWrites.Duration)
	return nil
}

// replicaSettings is what of d a replica pool is made with: a change to any of them makes a
// reload replace the replica pool.
func replicaSettings(d config.Database) config.Database {
	return config.Database{Name: d.Name, MaxConnections: d.MaxConnections, QueueTimeout: d.QueueTimeout,
		IdleTimeout: d.IdleTimeout, MaxLifetime: d.MaxLifetime,
		PlanetScale: config.PlanetScale{ReplicaReads: d.ReplicaReads, ReadYourWrites: d.ReadYourWrites, CredentialTTL: d.CredentialTTL}}
}

// reattachReplicas applies a reload's replica settings (next, whose PlanetScale databases
// psReload has resolved; og holds the pools after the reload's swap): a database whose
// replica_reads was turned off, whose replica settings changed, or whose pool the reload
// replaced, loses its replicas (detach); one with replica_reads on and none attached gets them
// (attachReplica). It compares with what is attached, not with the previous file, so that a
// replica that could not be attached is tried again at the next reload. A failure to attach
// leaves that database reading from its primary, and is logged.
func (ps *planetScales) reattachReplicas(ctx context.Context, next config.Config, og *origins) {
	want := map[string]config.Database{}
	for _, d := range next.Databases {
		if _, ok := ps.apis[d.Name]; ok && d.ReplicaReads && og.mysqlPool(og.tunnelName(d)) != nil {
			want[d.Name] = d
		}
	}
	ps.reps.mu.Lock()
	var drop []*psReplica
	for name, r := range ps.reps.attached {
		d, ok := want[name]
		if ok && replicaSettings(d) == replicaSettings(r.d) && og.mysqlPool(og.tunnelName(d)) == r.primary {
			delete(want, name) // unchanged
			continue
		}
		delete(ps.reps.attached, name)
		drop = append(drop, r)
	}
	ps.reps.mu.Unlock()
	for _, r := range drop {
		ps.detach(r)
	}
	for _, d := range want {
		if err := ps.attachReplica(ctx, d, og); err != nil {
			ps.log.Error("reload: replica reads not attached; the database reads from its primary", "db", d.Name, "err", err)
		}
	}
}

// detach takes a database's replicas away: its pool sends every read to the primary from its
// next lease on; the replica pool closes (idle connections at once, leased ones as they come
// back), and once its last connection has closed the replica credential is deleted, in the
// background. A replica pool left with connections for a minute is closed anyway: its
// credential is deleted at shutdown.
func (ps *planetScales) detach(r *psReplica) {
	if r.primary != nil {
		r.primary.ClearReplica(r.pool)
	}
	r.pool.Close()
	ps.log.Info("planetscale replica reads off", "db", r.d.Name)
	reps := &ps.reps
	reps.mu.Lock()
	done := reps.done
	if done != nil {
		reps.detached[r] = true
	}
	reps.mu.Unlock()
	if done == nil { // closeReplicas has run: delete the credential now
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.rotator.Close(ctx)
		return
	}
	reps.wg.Add(1)
	go func() {
		defer reps.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for r.pool.Stats().InUse > 0 {
			select {
			case <-tick.C:
			case <-done:
				return // closeReplicas deletes the credential
			case <-ctx.Done():
				ps.log.Warn("a detached replica pool still has connections a minute on; its credential is deleted at shutdown", "db", r.d.Name)
				return
			}
		}
		reps.mu.Lock()
		mine := reps.detached[r]
		delete(reps.detached, r)
		reps.mu.Unlock()
		if mine {
			if err := r.rotator.Close(ctx); err != nil {
				ps.log.Warn("planetscale: deleting a detached replica credential failed; it expires by itself", "db", r.d.Name, "err", err)
			}
		}
	}()
}

// closeReplicas deletes the credentials of every replica, attached or detached; call it after
// the pools have closed.
func (ps *planetScales) closeReplicas(ctx context.Context) {
	reps := &ps.reps
	reps.mu.Lock()
	if reps.done == nil { // closed already
		reps.mu.Unlock()
		return
	}
	close(reps.done)
	reps.done = nil
	var all []*psReplica
	for _, r := range reps.attached {
		all = append(all, r)
	}
	for r := range reps.detached {
		all = append(all, r)
	}
	clear(reps.attached)
	clear(reps.detached)
	reps.mu.Unlock()
	for _, r := range all {
		if err := r.rotator.Close(ctx); err != nil {
			ps.log.Warn("planetscale: deleting minted replica credentials failed; they expire by themselves", "db", r.d.Name, "err", err)
		}
	}
	reps.wg.Wait()
}

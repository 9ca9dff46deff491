package main

import (
	"context"
	"fmt"
	"time"

	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/planetscale"
	mysqlpool "github.com/slipstream-proxy/slipstream/pool/mysql"
)

// attachReplicas gives every PlanetScale MySQL database with replica_reads its replicas: it
// mints a replica credential (role reader, rotated like the primary's), opens a pool to the
// host that credential names, and makes it the replica pool of the database's pool, which
// sends there the reads the edge routes (proxy's replicaRouter). serve calls it once its pools
// are open; `slipstream pool` does not (warnNoReplicas). Errors are startupErrors.
func (ps *planetScales) attachReplicas(ctx context.Context, cfg config.Config, og *origins) error {
	var metrics *mysqlpool.ReplicaMetrics
	for _, d := range cfg.Databases {
		// startPlanetScale has rewritten the origins of PlanetScale databases: apis knows them.
		api, ok := ps.apis[d.Name]
		p := og.mypools[og.tunnelName(d)]
		if !ok || !d.ReplicaReads || p == nil {
			continue // Validate refused replica_reads for a Postgres branch
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		r, err := planetscale.StartRotator(rctx, planetscale.RotatorConfig{Client: api.client, Target: api.target, DB: d.Name,
			Role: planetscale.RoleReader, Replica: true, TTL: d.CredentialTTL.Duration, Logger: ps.log, Metrics: ps.metrics})
		cancel()
		if err != nil {
			return startupError{fmt.Errorf("database %s: replica_reads: %w", d.Name, err)}
		}
		ps.replicas[d.Name] = r
		rp, err := mysqlpool.New(mysqlpool.Config{
			Name:           d.Name + "@replica",
			Origin:         psOriginURL(api.target.Kind, r.Current()),
			MaxConns:       d.MaxConnections,
			QueueTimeout:   d.QueueTimeout.Duration,
			IdleTimeout:    d.IdleTimeout.Duration,
			MaxLifetime:    d.MaxLifetime.Duration,
			CatalogRefresh: -1, // the primary's catalog is the one edges learn
			Logger:         ps.log.With("replica", true),
			Metrics:        og.myMetrics,
			Credentials:    r.Source,
		})
		if err != nil {
			return startupError{fmt.Errorf("database %s: replica_reads: %w", d.Name, err)}
		}
		og.mu.Lock()
		og.closes = append(og.closes, func() error { rp.Close(); return nil })
		og.mu.Unlock()
		if metrics == nil {
			metrics = mysqlpool.NewReplicaMetrics(og.reg)
		}
		p.SetReplica(mysqlpool.Replica{Pool: rp, ReadYourWrites: d.ReadYourWrites.Duration, Metrics: metrics})
		ps.log.Info("planetscale replica reads on", "db", d.Name, "host", r.Current().Host, "read_your_writes", d.ReadYourWrites.Duration)
	}
	return nil
}

// warnNoReplicas says, for `slipstream pool`, that its replica_reads databases read from the
// primary: the edge's routing of reads does not cross the tunnel yet.
func (ps *planetScales) warnNoReplicas(cfg config.Config) {
	for _, d := range cfg.Databases {
		if _, ok := ps.apis[d.Name]; ok && d.ReplicaReads {
			ps.log.Warn("replica_reads is served by slipstream serve only; this pool sends every read to the primary", "db", d.Name)
		}
	}
}

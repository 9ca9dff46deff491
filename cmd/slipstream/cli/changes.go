package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/pool/changes"
	"github.com/slipstream-proxy/slipstream/tunnel"
)

// changeStreams returns a runner per database whose reads are invalidated from the origin's
// change stream (config.Database.Streamed), driving sink. One whose origin can't give a stream
// falls back to max_age with a warning, unless its max_age is over the 1h that TTL caching
// allows: then it is not cached at all. results is the cache sink reaches in this process
// (nil: none), whose reads served while a stream was behind are exported.
func changeStreams(cfg config.Config, sink changes.Sink, results *cache.Cache, log *slog.Logger, reg prometheus.Registerer) []func(context.Context) error {
	var runs []func(context.Context) error
	metrics := changes.NewMetrics(reg)
	for _, d := range cfg.Databases {
		if !d.Streamed() {
			continue
		}
		if results != nil {
			registerReadsBehind(reg, results, d.Name)
		}
		ccfg := changes.Config{DB: d.Name, Origin: d.Origin, Slot: d.Stream.Slot, Publication: d.Stream.Publication,
			ServerID: d.Stream.ServerID, MaxLag: d.Stream.MaxLag.Duration, Sink: sink, Logger: log, Metrics: metrics}
		runs = append(runs, func(ctx context.Context) error {
			err := changes.Run(ctx, ccfg)
			if errors.Is(err, changes.ErrUnavailable) && d.Caching.MaxAge.Duration > time.Hour {
				sink.Suspend(d.Name)
				log.Warn("caching of the database is off: its max_age is over 1h, which needs a change stream", "db", d.Name)
			}
			return nil // the database goes on with TTL caching, or none
		})
	}
	return runs
}

// registerReadsBehind exports results' count of db's answers served while its change stream
// was behind by more than max_lag (cache.DBStats.ReadsBehind), which must stay 0. Once per name:
// a PostgreSQL and a MySQL database may share one, and the cache counts by name.
func registerReadsBehind(reg prometheus.Registerer, results *cache.Cache, db string) {
	if reg == nil {
		return
	}
	err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "slipstream_change_stream_reads_behind_total",
		Help: "Cached answers served while the database's change stream was behind by more than max_lag " +
			"(a probe of the origin's position not applied within max_lag, not yet suspended): must stay 0.",
		ConstLabels: prometheus.Labels{"db": db},
	}, func() float64 { return float64(results.DBStats()[db].ReadsBehind) }))
	if are := (prometheus.AlreadyRegisteredError{}); err != nil && !errors.As(err, &are) {
		panic(err) // a metric of another shape under this name: a programming error
	}
}

// poolSink invalidates what a pool's change streams report in the pool's shared cache and on
// every edge connected to it.
type poolSink struct {
	server *tunnel.Server
	cache  *cache.Cache // nil: the pool keeps no cache
}

func (s poolSink) Invalidate(db string, tables []string, all bool) {
	if s.cache != nil {
		// First the pool's cache, which every edge reads through: an edge told of the write
		// may miss at once and must not find the answer from before it here.
		s.cache.Invalidate(db, tables, all)
	}
	s.server.Invalidate(db, tables, all)
}

// Suspend stops the pool's cache and every edge's (tunnel.Server.SuspendStream): none serves
// or keeps an answer of db until Resume. The change stream also drops db on every edge every
// 100 ms while suspended.
func (s poolSink) Suspend(db string) {
	if s.cache != nil {
		s.cache.Suspend(db)
	}
	s.server.SuspendStream(db)
}

func (s poolSink) Resume(db string) {
	if s.cache != nil {
		s.cache.Resume(db)
	}
	s.server.ResumeStream(db)
}

// CurrentUntil reaches the pool's cache, and the edges with the next lease renewal: each
// counts the answers it serves after then (slipstream_change_stream_reads_behind_total).
func (s poolSink) CurrentUntil(db string, t time.Time) {
	if s.cache != nil {
		s.cache.CurrentUntil(db, t)
	}
	s.server.StreamCurrentUntil(db, t)
}

// dropSlots drops the replication slot of every PostgreSQL database of cfg whose reads are
// invalidated from a change stream (slipstream pool --drop-slot), and says what it did.
func dropSlots(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	var errs []error
	for _, d := range cfg.Databases {
		if !d.Streamed() || d.Kind == config.KindMySQL {
			continue
		}
		slot := d.Stream.Slot
		if slot == "" {
			slot = changes.DefaultSlot(d.Name)
		}
		if err := changes.DropSlot(ctx, d.Origin, d.Name, slot); err != nil {
			errs = append(errs, fmt.Errorf("database %s: %w", d.Name, err))
			continue
		}
		fmt.Fprintf(stdout, "database %s: replication slot %s dropped\n", d.Name, slot)
	}
	return errors.Join(errs...)
}

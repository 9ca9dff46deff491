package changes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable is what Run returns when the origin can't give a change stream until its
// operator changes something (wal_level, privileges, a publication, binlog_format): the
// database keeps invalidating by max_age.
var ErrUnavailable = errors.New("changes: no change stream from this origin")

// Sink is what a change stream drives: the result caches in front of the database. The edge's
// cache (cache.Cache) is one; a pool's fan-out to its edges is another.
type Sink interface {
	// Invalidate drops the cached reads of db under tables (or all of db's) and returns once
	// every cache that must know has dropped them.
	Invalidate(db string, tables []string, all bool)
	// Suspend drops every cached read of db and serves or keeps none until Resume.
	Suspend(db string)
	// Resume lets db be cached again.
	Resume(db string)
	// CurrentUntil says until when the stream vouches for db's answers: it suspends db before
	// then unless it vouches again. An answer served later counts as a read served while the
	// stream was behind (cache.Cache counts them). The zero time removes the limit.
	CurrentUntil(db string, t time.Time)
}

// Config is one database's change stream.
type Config struct {
	DB          string        // the database as clients name it, the Sink's name for it; required
	Origin      string        // postgres:// or mysql:// URL, with the credentials the stream connects with; required
	Slot        string        // PostgreSQL: the replication slot's name; "": "slipstream_" + DB (made safe)
	Publication string        // PostgreSQL: the publication streamed, FOR ALL TABLES; "": "slipstream"
	ServerID    uint32        // MySQL: the replica server id this stream registers with; 0: one chosen at random
	MaxLag      time.Duration // behind by more than this, caching stops until the stream catches up; 0: 5s
	Sink        Sink          // required
	Logger      *slog.Logger  // nil: slog.Default()
	Metrics     *Metrics      // nil: none
}

// DefaultMaxLag is MaxLag's zero value.
const DefaultMaxLag = 5 * time.Second

// source is one kind of origin's stream: connect sets it up (an ErrUnavailable error when the
// operator must change something), then stream runs it until it fails or ctx ends. While it
// streams, probe (from another goroutine, on a connection of its own) reads the origin's
// position: how many bytes the stream has yet to apply, and whether it has applied that
// position since.
type source interface {
	connect(ctx context.Context) error
	stream(ctx context.Context, h *health) error
	probe(ctx context.Context) (lagBytes int64, reached func() bool, err error)
	close()
}

// Run keeps cfg's change stream going until ctx ends: it returns ErrUnavailable (wrapped, with
// the reason) when the origin can't give one, and nil when ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = DefaultMaxLag
	}
	src, err := newSource(cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger.With("db", cfg.DB)
	h := newHealth(cfg)
	defer h.stop()
	h.suspend() // until the stream has caught up with where the origin is when it connects
	for attempt := 0; ; attempt++ {
		err := src.connect(ctx)
		if err == nil {
			h.suspend()
			if attempt > 0 {
				log.Info("change stream connected again")
			}
			attempt = 0
			err = h.streamProbed(ctx, src)
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrUnavailable):
			h.giveUp()
			log.Warn("no change stream: writes made without Slipstream show after max_age", "reason", err)
			return err
		}
		h.suspend()
		cfg.Metrics.disconnect(cfg.DB)
		log.Warn("change stream lost: caching of the database is off until it is back", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff(attempt)):
		}
	}
}

// streamProbed runs src's stream with its probes beside it, until the stream ends; then it
// closes src.
func (h *health) streamProbed(ctx context.Context, src source) error {
	h.probes.reset()
	h.fellBehind() // a verdict on the connection before is not this one's
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.probeLoop(pctx, src)
	}()
	err := src.stream(ctx, h)
	stop()
	<-done
	h.queue.flush() // the connection's positions passed before the next one starts
	src.close()
	return err
}

// backoff is how long to wait before the attempt-th reconnection: from 100 ms doubling to 5 s,
// with jitter so that pools restarted together don't reconnect together.
func backoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 6)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// health is whether cfg's cache may serve: suspended while the stream is down, catching up, or
// behind by more than MaxLag. While suspended it also invalidates all of the database every
// tick, so that a cache the Sink reaches only by invalidations keeps nothing for long either
// (a pool's Sink suspends its edges' caches too: tunnel.Server.SuspendStream).
type health struct {
	cfg Config

	probes probes
	queue  *invalidations

	mu        sync.Mutex
	suspended bool
	behind    bool // watch suspended it: the stream is to end with errBehind
	gaveUp    bool // no stream: TTL caching
	done      chan struct{}
	wg        sync.WaitGroup
}

// suspendTick is how often a suspended database is invalidated again.
const suspendTick = 100 * time.Millisecond

// errBehind ends a stream that fell more than MaxLag behind: it is suspended and reconnects,
// which sets a new point to catch up with.
var errBehind = errors.New("the change stream fell more than max_lag behind")

func newHealth(cfg Config) *health {
	h := &health{cfg: cfg, done: make(chan struct{}), queue: newInvalidations()}
	h.wg.Add(2)
	go h.tick()
	go h.invalidator()
	return h
}

// tick invalidates a suspended database every suspendTick, until stop.
func (h *health) tick() {
	defer h.wg.Done()
	t := time.NewTicker(suspendTick)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		h.mu.Lock()
		suspended, gaveUp := h.suspended, h.gaveUp
		h.mu.Unlock()
		switch {
		case suspended:
			h.cfg.Sink.Invalidate(h.cfg.DB, nil, true)
		case !gaveUp:
			h.watch(time.Now())
		}
	}
}

func (h *health) stop() {
	close(h.done)
	h.wg.Wait()
	if h.gaveUp {
		h.cfg.Sink.CurrentUntil(h.cfg.DB, time.Time{})
	}
}

// suspend stops caching until caughtUp.
func (h *health) suspend() {
	h.mu.Lock()
	was := h.suspended
	h.suspended = true
	h.mu.Unlock()
	if !was {
		h.cfg.Sink.Suspend(h.cfg.DB)
		h.cfg.Metrics.setUp(h.cfg.DB, false)
	}
}

// giveUp hands the database back to TTL caching for good.
func (h *health) giveUp() {
	h.mu.Lock()
	h.gaveUp = true // stop lifts the read limit once the tick has ended
	h.mu.Unlock()
	h.resume()
	h.cfg.Metrics.setUp(h.cfg.DB, false)
}

// caughtUp says the stream has everything the origin had when it connected: caching resumes.
func (h *health) caughtUp() {
	if h.resume() {
		h.cfg.Metrics.setUp(h.cfg.DB, true)
		h.cfg.Logger.Info("change stream current: the database is cached again", "db", h.cfg.DB)
	}
}

// resume lets the Sink cache the database again if it was suspended, and says whether it was.
func (h *health) resume() bool {
	h.mu.Lock()
	was := h.suspended
	h.suspended = false
	h.mu.Unlock()
	if was {
		// The transactions replayed while catching up were not invalidated one by one:
		// drop the whole database once more, then cache it again. A limit from before the
		// suspension must not count the first reads as behind; watch sets it from the
		// probes on its next tick.
		h.cfg.Sink.Invalidate(h.cfg.DB, nil, true)
		h.cfg.Sink.CurrentUntil(h.cfg.DB, time.Now().Add(h.probeLag()))
		h.cfg.Sink.Resume(h.cfg.DB)
	}
	return was
}

// commit queues the invalidation of what one committed transaction wrote (a copy of tables),
// and records how long after its commit it arrived. While catching up (suspended) nothing is
// queued: the database is dropped whole when it resumes. A commit older than MaxLag, once the
// stream was current, is errBehind: the caller ends the stream, which reconnects and catches
// up with caching off.
func (h *health) commit(tables []string, all bool, committed time.Time) error {
	return h.commitTimed(tables, all, txTimes{committed: committed, received: time.Now()})
}

// txTimes are the points a transaction passed on its way to the caches: its commit at the
// origin, when the origin sent it (PostgreSQL's XLogData time; zero when the stream does not
// say) and when the stream read it. With the time its invalidation returned they are
// slipstream_change_stream_delay_seconds' stages.
type txTimes struct {
	committed, sent, received time.Time
}

// commitTimed is commit with the transaction's times along the way.
func (h *health) commitTimed(tables []string, all bool, at txTimes) error {
	committed := at.committed
	lag := time.Since(committed)
	h.cfg.Metrics.lag(h.cfg.DB, lag)
	h.mu.Lock()
	catchingUp := h.suspended
	h.mu.Unlock()
	if (len(tables) > 0 || all) && !catchingUp {
		h.queue.push(invalidation{tables: slices.Clone(tables), all: all, drop: true, at: at})
	}
	// Catching up (after a connection, with caching off), old commits are what is expected; once
	// current, one that arrives more than MaxLag after its commit means the stream fell behind.
	if lag > h.cfg.MaxLag && !catchingUp {
		h.suspend()
		return errBehind
	}
	return nil
}

// newSource picks the stream for cfg.Origin's scheme.
func newSource(cfg Config) (source, error) {
	switch {
	case strings.HasPrefix(cfg.Origin, "postgres://"), strings.HasPrefix(cfg.Origin, "postgresql://"):
		return newPostgres(cfg)
	case strings.HasPrefix(cfg.Origin, "mysql://"):
		return newMySQL(cfg)
	}
	return nil, fmt.Errorf("%w: the origin is neither postgres:// nor mysql://", ErrUnavailable)
}

// discardLogger keeps go-mysql's replication chatter out of the process's log.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

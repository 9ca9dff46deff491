package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrQueueTimeout means every origin connection stayed busy for the whole queue timeout.
var ErrQueueTimeout = errors.New("pool: timed out waiting for an origin connection")

// ErrClosed means the pool or the session was closed.
var ErrClosed = errors.New("pool: closed")

// Config describes the pool of one database.
type Config struct {
	// Name labels the database in logs and metrics.
	Name string
	// Origin is the origin's connection URL (postgres://user:password@host:port/db?sslmode=...).
	Origin string
	// MaxConns bounds the connections to the origin; 0 means 20.
	MaxConns int
	// QueueTimeout bounds how long a session waits for a connection; 0 means 30s.
	QueueTimeout time.Duration
	// IdleTimeout closes connections idle for longer; 0 means 10 minutes.
	IdleTimeout time.Duration
	// MaxLifetime retires connections older than this when they are next released; 0 means 1 hour.
	MaxLifetime time.Duration
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts what the pool does.
	Metrics *Metrics
	// Dial, when set, opens connections to an origin that lives in this process (D1) instead
	// of dialling the URL's host over TCP.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Pool holds the origin connections of one database.
//
// Connections are counted from the moment one is dialled until it is closed, so the origin never
// sees more than MaxConns. Sessions that find none free wait in FIFO order (waiters): a release
// hands its connection straight to the first waiter, a close hands over the right to dial.
type Pool struct {
	cfg     Config
	connCfg *pgconn.Config
	log     *slog.Logger
	m       *dbMetrics

	mu      sync.Mutex
	idle    []*Conn // most recently used last
	total   int     // dialling, leased and idle
	waiters []chan *Conn
	profile map[string]string
	// volatility maps function names to their most volatile pg_proc.provolatile; read once.
	volatility map[string]byte
	refreshMu  sync.Mutex
	closed     bool

	done chan struct{}
	ctx  context.Context // ends when the pool closes, for its own background work
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New returns a pool for cfg. It dials nothing until a session or Profile needs a connection.
func New(cfg Config) (*Pool, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 20
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cc, err := pgconn.ParseConfig(cfg.Origin)
	if err != nil {
		// pgconn's parse errors can quote the URL; never pass them on.
		return nil, fmt.Errorf("pool: %s: origin URL is not valid", cfg.Name)
	}
	if cfg.Dial != nil {
		cc.DialFunc = cfg.Dial
		cc.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "slipstream"
	}
	p := &Pool{
		cfg:     cfg,
		connCfg: cc,
		log:     cfg.Logger.With("db", cfg.Name),
		m:       cfg.Metrics.forDB(cfg.Name),
		done:    make(chan struct{}),
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	p.m.register(p)
	p.wg.Add(1)
	go p.reap()
	return p, nil
}

// Name returns the database name the pool serves.
func (p *Pool) Name() string { return p.cfg.Name }

// Profile returns the ParameterStatus values the origin reported, connecting once if no
// connection has been made yet.
func (p *Pool) Profile(ctx context.Context) (map[string]string, error) {
	p.mu.Lock()
	prof := p.profile
	p.mu.Unlock()
	if prof != nil {
		return prof, nil
	}
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	p.Release(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.profile, nil
}

// refreshVolatility reads the origin's function volatilities again, on a connection of its own
// (leased connections are raw streams), because a statement changed functions. It runs before
// that statement's answer goes to its client, so no read cached after the answer can rely on
// the old volatility. One refresh runs at a time.
func (p *Pool) refreshVolatility() {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	catalog := make(map[string]byte)
	c, _, err := dial(ctx, p.connCfg, catalog)
	if err != nil {
		p.log.Warn("re-reading function volatility failed; the cache keeps the old", "err", originError(err))
		return
	}
	c.close()
	p.mu.Lock()
	p.volatility = catalog
	p.mu.Unlock()
}

// Volatility returns the origin's function volatilities as pg_proc has them ('i', 's', 'v' by
// name, the most volatile overload), read when the pool first connected; nil before that.
func (p *Pool) Volatility() map[string]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.volatility
}

// Stats are the pool's connection counts.
type Stats struct {
	InUse, Idle, Waiting int
}

// Stats returns the current connection counts.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{InUse: p.total - len(p.idle), Idle: len(p.idle), Waiting: len(p.waiters)}
}

// Acquire leases an origin connection, dialling one if the pool is under its limit and waiting
// in line otherwise, for at most the queue timeout.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if c := p.popIdle(); c != nil {
		p.mu.Unlock()
		return c, nil
	}
	if p.total < p.cfg.MaxConns {
		p.total++
		p.mu.Unlock()
		return p.dial(ctx)
	}
	// Full: wait for a release (a connection) or a close (nil: the right to dial).
	w := make(chan *Conn, 1)
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()

	start := time.Now()
	timer := time.NewTimer(p.cfg.QueueTimeout)
	defer timer.Stop()
	var err error
	select {
	case c := <-w:
		p.m.observeWait(time.Since(start))
		if c == nil {
			return p.dial(ctx)
		}
		return c, nil
	case <-timer.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	case <-p.done:
		err = ErrClosed
	}
	p.m.observeWait(time.Since(start))
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			if err == ErrQueueTimeout {
				p.m.queueTimeouts.Inc()
			}
			return nil, err
		}
	}
	p.mu.Unlock()
	// A release or close picked us just as we gave up: pass it on.
	if c := <-w; c != nil {
		p.Release(c)
	} else {
		p.mu.Lock()
		p.total--
		p.handOverSlot()
		p.mu.Unlock()
	}
	return nil, err
}

// popIdle returns the most recently used idle connection that is still fit. p.mu is held.
func (p *Pool) popIdle() *Conn {
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(c.created) < p.cfg.MaxLifetime {
			return c
		}
		p.total--
		go c.close()
	}
	return nil
}

// dial opens a connection for a slot already counted in p.total.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	var catalog map[string]byte
	if p.volatility == nil {
		catalog = make(map[string]byte)
	}
	p.mu.Unlock()
	c, params, err := dial(ctx, p.connCfg, catalog)
	if err != nil {
		p.mu.Lock()
		p.total--
		p.handOverSlot()
		p.mu.Unlock()
		p.m.connectErrors.Inc()
		p.log.Warn("origin connection failed", "err", originError(err))
		return nil, fmt.Errorf("pool: connect to origin: %w", err)
	}
	p.mu.Lock()
	if p.profile == nil {
		p.profile = maps.Clone(params)
	}
	if p.volatility == nil && catalog != nil {
		p.volatility = catalog
	}
	p.mu.Unlock()
	return c, nil
}

// handOverSlot gives a freed slot to the first waiter, which will dial. p.mu is held and
// p.total already excludes the freed connection.
func (p *Pool) handOverSlot() {
	if len(p.waiters) > 0 && p.total < p.cfg.MaxConns {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.total++
		w <- nil
	}
}

// Release returns a leased connection. A broken or retired connection is closed instead, and
// its slot goes to the next waiter.
func (p *Pool) Release(c *Conn) {
	p.mu.Lock()
	if c.broken || c.retire || p.closed || time.Since(c.created) >= p.cfg.MaxLifetime {
		p.total--
		p.handOverSlot()
		p.mu.Unlock()
		if c.broken {
			p.m.brokenConns.Inc()
		}
		c.close()
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- c
		return
	}
	c.idleSince = time.Now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// reap closes connections that sat idle past the idle timeout.
func (p *Pool) reap() {
	defer p.wg.Done()
	every := min(max(p.cfg.IdleTimeout/4, 100*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			var old []*Conn
			p.mu.Lock()
			keep := p.idle[:0]
			for _, c := range p.idle {
				if now.Sub(c.idleSince) >= p.cfg.IdleTimeout || now.Sub(c.created) >= p.cfg.MaxLifetime {
					old = append(old, c)
				} else {
					keep = append(keep, c)
				}
			}
			clear(p.idle[len(keep):])
			p.idle = keep
			p.total -= len(old)
			for range old {
				p.handOverSlot()
			}
			p.mu.Unlock()
			for _, c := range old {
				c.close()
			}
		}
	}
}

// Close closes the idle connections and refuses new leases; leased connections are closed as
// they come back.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.total -= len(idle)
	p.mu.Unlock()
	close(p.done)
	p.stop()
	p.wg.Wait()
	for _, c := range idle {
		c.close()
	}
}

// originError returns an error safe to log: pgconn's connect errors can carry the connection
// string, and so the password; only the origin's own PgError message is kept.
func originError(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity + " " + pe.Code + ": " + pe.Message
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return "cannot connect to " + ce.Config.Host + ": " + unwrapAll(ce.Unwrap())
	}
	return unwrapAll(err)
}

func unwrapAll(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

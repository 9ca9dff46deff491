package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/link"
)

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
	// CatalogRefresh is how often the pool reads the origin's catalog again while it has
	// connections, to learn of views, triggers and functions made without Slipstream (a
	// migration run straight against the database); 0 means DefaultCatalogRefresh, a negative
	// value never.
	CatalogRefresh time.Duration
	// Credentials, when set, gives the user and password of each new connection in place of the
	// URL's (a PlanetScale credential that rotates); connections opened with a credential since
	// retired are closed when idle.
	Credentials CredentialSource
	// Role, when set, makes this the pool of one role of a database that lets any role in
	// (Roles): its connections log in as the role, with what the role's clients proved.
	Role *Role
}

// Pool holds the origin connections of one database: Slots counts them, queues sessions and
// recycles idle ones (every connection has the same key); Pool dials them and learns the origin's
// profile.
type Pool struct {
	CatalogHook // edges are told when the origin's catalog changed

	cfg     Config
	connCfg *pgconn.Config
	log     *slog.Logger
	m       *dbMetrics
	slots   *Slots[*Conn, struct{}]

	// stmtGen is the generation of shared statement names (statements.go): it moves on when
	// the pool sees DDL or a statement gone stale, so that a Parse after it prepares afresh.
	stmtGen atomic.Uint64

	mu      sync.Mutex
	profile map[string]string
	// cat is the origin's catalog as the cache needs it: read with the first connection, again
	// after a statement that changes it; nil before.
	cat       *catalog
	refreshMu sync.Mutex
	creds     CredentialWatch

	ctx  context.Context // ends when the pool closes, for its own background work
	stop context.CancelFunc
}

// New returns a pool for cfg. It dials nothing until a session or Profile needs a connection.
func New(cfg Config) (*Pool, error) {
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
	m := cfg.Metrics.forDB(cfg.Name)
	p := &Pool{
		cfg:     cfg,
		connCfg: cc,
		log:     cfg.Logger.With("db", cfg.Name),
		m:       m,
		slots: NewSlots[*Conn](SlotsConfig{Name: cfg.Name, MaxConns: cfg.MaxConns, QueueTimeout: cfg.QueueTimeout,
			IdleTimeout: cfg.IdleTimeout, MaxLifetime: cfg.MaxLifetime, Metrics: m.m.SlotMetrics}),
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	go WatchCatalog(p.ctx, cfg.CatalogRefresh, p.log, p.catalogActive, p.refreshCatalog, p.TellCatalog)
	return p, nil
}

// Name returns the database name the pool serves.
func (p *Pool) Name() string { return p.cfg.Name }

// Profile returns the ParameterStatus values the origin reported, connecting once if no
// connection has been made yet.
func (p *Pool) Profile(ctx context.Context) (map[string]string, error) {
	return AwaitProfile(ctx, func() map[string]string {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.profile
	}, func(ctx context.Context) error {
		c, err := p.Acquire(ctx)
		if err == nil {
			p.Release(c)
		}
		return err
	})
}

// profileWait bounds how long AwaitProfile waits for the first connections to learn the
// profile.
const profileWait = 15 * time.Second

// AwaitProfile returns what known reports, once it reports something: a pool's origin profile,
// which its first connection learns. Until then it leases and releases a connection (lease),
// and, should every slot be taken past the queue timeout by first connections still dialling
// (and reading the catalog), it waits on for them, up to profileWait.
func AwaitProfile(ctx context.Context, known func() map[string]string, lease func(context.Context) error) (map[string]string, error) {
	if prof := known(); prof != nil {
		return prof, nil // the usual case: no timer
	}
	ctx, cancel := context.WithTimeout(ctx, profileWait)
	defer cancel()
	for {
		if prof := known(); prof != nil {
			return prof, nil
		}
		if err := lease(ctx); err != nil && (!errors.Is(err, link.ErrQueueTimeout) || ctx.Err() != nil) {
			return nil, err
		}
	}
}

// refreshCatalog reads the origin's function volatilities and related relations again, on a
// connection of its own (leased connections are raw streams), and reports whether they
// changed. After a statement that changed them it runs before that statement's answer goes to
// its client, so no read cached after the answer can rely on the old catalog. One refresh runs
// at a time.
func (p *Pool) refreshCatalog() (changed bool) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	cat := new(catalog)
	c, _, err := p.dialOrigin(ctx, cat)
	if err != nil {
		if p.ctx.Err() == nil {
			p.log.Warn("re-reading the origin's catalog failed; the cache keeps the old", "err", originError(err))
		}
		return false
	}
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	changed = p.cat == nil || !maps.Equal(p.cat.volatility, cat.volatility) || !p.cat.related.Equal(cat.related)
	p.cat = cat
	return changed
}

// catalogActive reports whether the pool has read the origin's catalog once and still has
// connections: WatchCatalog reads it again only then.
func (p *Pool) catalogActive() bool {
	p.mu.Lock()
	known := p.cat != nil
	p.mu.Unlock()
	st := p.slots.Stats()
	return known && st.InUse+st.Idle > 0
}

// catalogChanged reads the origin's catalog again and tells whoever asked (OnCatalogChange).
func (p *Pool) catalogChanged() {
	if p.cfg.Role != nil { // the base pool reads the catalog and tells the edges
		p.cfg.Role.roles.base.catalogChanged()
		return
	}
	p.refreshCatalog()
	p.TellCatalog()
}

// Volatility returns the origin's function volatilities as pg_proc has them ('i', 's', 'v' by
// name, the most volatile overload), read when the pool first connected; nil before that.
func (p *Pool) Volatility() map[string]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cat == nil {
		return nil
	}
	return p.cat.volatility
}

// Related returns the relations whose rows change together, as the origin's catalog says,
// read when the pool first connected; zero before that.
func (p *Pool) Related() link.Related {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cat == nil {
		return link.Related{}
	}
	return p.cat.related
}

// Stats returns the current connection counts.
func (p *Pool) Stats() Stats { return p.slots.Stats() }

// Acquire leases an origin connection, dialling one if the pool is under its limit and waiting
// in line otherwise, for at most the queue timeout.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	for attempt := 1; ; attempt++ {
		c, dial, err := p.slots.Take(ctx, struct{}{})
		if !dial {
			return c, err
		}
		// A kill of every backend of the database (pg_terminate_backend) also ends those still
		// starting up: dial again, as nothing of the client's has gone out.
		if c, err = p.dial(ctx); err == nil || attempt == 3 || !killedStarting(err) {
			return c, err
		}
	}
}

// killedStarting reports whether a connect failed because the origin ended the new backend
// from outside (57P01 admin_shutdown) while it started.
func killedStarting(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57P01"
}

// dial opens a connection for a slot already counted in p.total.
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	var cat *catalog
	if p.cat == nil {
		cat = new(catalog)
	}
	p.mu.Unlock()
	c, params, err := p.dialOrigin(ctx, cat)
	if err != nil {
		p.slots.DialFailed()
		p.log.Warn("origin connection failed", "err", originError(err))
		if errors.Is(err, ErrNoCredential) { // its message was made to be shown, whole
			return nil, fmt.Errorf("pool: connect to origin: %w", link.NewOriginError(link.OriginUnreachable, err.Error(), "", err))
		}
		return nil, fmt.Errorf("pool: connect to origin: %w", classifyConnect(err))
	}
	p.mu.Lock()
	if p.profile == nil {
		p.profile = maps.Clone(params)
	}
	if p.cat == nil && cat != nil {
		p.cat = cat
	}
	p.mu.Unlock()
	return c, nil
}

// dialOrigin dials with the URL's credentials, or with the current one of cfg.Credentials.
func (p *Pool) dialOrigin(ctx context.Context, cat *catalog) (*Conn, map[string]string, error) {
	if p.cfg.Role != nil {
		return p.cfg.Role.dial(ctx, p.connCfg)
	}
	if p.cfg.Credentials == nil {
		return dial(ctx, p.connCfg, cat)
	}
	cred, release, err := p.cfg.Credentials.Take(ctx)
	if err != nil {
		return nil, nil, err
	}
	cc := p.connCfg.Copy()
	cc.User, cc.Password = cred.User, cred.Password
	c, params, err := dial(ctx, cc, cat)
	if err != nil {
		release()
		return nil, nil, err
	}
	c.cred, c.uncount = cred, release
	p.creds.Watch(p.ctx, cred, p.slots.CloseIdleRetired)
	return c, params, nil
}

// Release returns a leased connection. A broken or retired connection is closed instead, and
// its slot goes to the next waiter.
func (p *Pool) Release(c *Conn) { p.slots.Release(c) }

// Close closes the idle connections and refuses new leases; leased connections are closed as
// they come back.
func (p *Pool) Close() {
	p.stop()
	p.slots.Close()
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

// Origin returns the pool as the pool side of its database (the link contract), for a
// transport to serve.
func (p *Pool) Origin() link.Origin { return origin{p} }

type origin struct{ p *Pool }

func (o origin) Profile(ctx context.Context) (link.Profile, error) {
	params, err := o.p.Profile(ctx)
	if err != nil {
		return link.Profile{}, err
	}
	return link.Profile{Parameters: params, Volatility: o.p.Volatility(), Related: o.p.Related()}, nil
}

func (o origin) Open(ctx context.Context, params map[string]string) (link.Stream, error) {
	return o.p.NewSession(ctx, params), nil
}

package mysqlpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
)

// Config describes the pool of one MySQL-protocol database.
type Config struct {
	// Name labels the database in logs and metrics.
	Name string
	// Origin is the origin's URL: mysql://USER:PASSWORD@HOST:PORT/DB[?tls=true|skip-verify|preferred].
	// Without tls the connection is plain TCP; port 3306 when left out.
	Origin string
	// Dial, when set, opens connections to an origin that lives in this process instead of
	// dialling the URL's host over TCP.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxConns bounds the connections to the origin; 0 means 20.
	MaxConns int
	// QueueTimeout bounds how long a command waits for a connection; 0 means 30s.
	QueueTimeout time.Duration
	// IdleTimeout closes connections idle for longer; 0 means 10 minutes.
	IdleTimeout time.Duration
	// MaxLifetime retires connections older than this when they are next released; 0 means 1 hour.
	MaxLifetime time.Duration
	// AllowLoadLocal lets clients that negotiated CLIENT_LOCAL_FILES run LOAD DATA LOCAL INFILE;
	// false (the default) opens origin connections without the flag, so the origin refuses it.
	AllowLoadLocal bool
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts what the pool does.
	Metrics *Metrics
	// CatalogRefresh is how often the pool reads the origin's views, foreign keys and triggers
	// again while it has connections, to learn of those made without Slipstream; 0 means
	// pool.DefaultCatalogRefresh, a negative value never.
	CatalogRefresh time.Duration
	// Credentials, when set, gives the user and password of each new connection in place of the
	// URL's (a PlanetScale credential that rotates); connections opened with a credential since
	// retired are closed when idle.
	Credentials pool.CredentialSource
}

// Pool holds the origin connections of one MySQL-protocol database: package pool's Slots counts
// them, queues sessions and recycles idle ones, keyed by the client flags and collation each
// was opened with (a connection serves only sessions with its key); Pool dials them and learns
// the origin's profile.
type Pool struct {
	pool.CatalogHook // edges are told when the origin's views, keys or triggers changed

	cfg   Config
	dc    dialConfig
	log   *slog.Logger
	slots *pool.Slots[*originConn, connKey]

	mu      sync.Mutex
	profile map[string]string
	// related are the relations whose rows change together, as the origin's information_schema
	// says: read with the first connection, again after a statement that changes them; nil
	// before.
	related   *link.Related
	refreshMu sync.Mutex
	noReset   atomic.Bool // the origin refuses COM_RESET_CONNECTION
	creds     pool.CredentialWatch
	stmts     *stmtRefs // which statements clients use; each connection's bound
	replica   replicaOf // the replicas' pool, for reads the edge routes there (replica.go)

	ctx  context.Context // ends when the pool closes, for its own background work
	stop context.CancelFunc
}

// New returns a pool for cfg. It dials nothing until a session or Profile needs a connection.
func New(cfg Config) (*Pool, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dc, err := parseOrigin(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("mysqlpool: %s: %w", cfg.Name, err)
	}
	dc.dial = cfg.Dial
	dc.creds = cfg.Credentials
	if dc.dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		dc.dial = d.DialContext
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	p := &Pool{
		stmts: newStmtRefs(),
		cfg:   cfg,
		dc:    dc,
		log:   cfg.Logger.With("db", cfg.Name),
		slots: pool.NewSlots[*originConn](pool.SlotsConfig{Name: cfg.Name, MaxConns: cfg.MaxConns,
			QueueTimeout: cfg.QueueTimeout, IdleTimeout: cfg.IdleTimeout, MaxLifetime: cfg.MaxLifetime,
			Metrics: cfg.Metrics.slots}),
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	go pool.WatchCatalog(p.ctx, cfg.CatalogRefresh, p.log, p.catalogActive, p.refreshRelated, p.TellCatalog)
	return p, nil
}

// parseOrigin parses mysql://USER:PASSWORD@HOST:PORT/DB[?tls=...]. Its errors never quote the
// URL, which holds a password.
func parseOrigin(s string) (dialConfig, error) {
	var dc dialConfig
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		return dc, errors.New("origin URL is not valid (want mysql://user:password@host:port/db)")
	}
	dc.addr = u.Host
	if u.Port() == "" {
		dc.addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	dc.user = u.User.Username()
	dc.password, _ = u.User.Password()
	dc.db = strings.TrimPrefix(u.Path, "/")
	for k, v := range u.Query() {
		switch {
		case k != "tls":
			return dc, fmt.Errorf("origin URL: unknown parameter %q", k)
		case v[0] == "true":
			dc.tls = tlsVerify
		case v[0] == "skip-verify":
			dc.tls = tlsSkipVerify
		case v[0] == "preferred":
			dc.tls = tlsPreferred
		case v[0] == "false":
		default:
			return dc, fmt.Errorf("origin URL: tls=%q (want true, skip-verify, preferred or false)", v[0])
		}
	}
	return dc, nil
}

// Name returns the database name the pool serves.
func (p *Pool) Name() string { return p.cfg.Name }

// Origin returns the pool as the pool side of its database (the link contract), for a
// transport to serve.
func (p *Pool) Origin() link.Origin { return origin{p} }

type origin struct{ p *Pool }

func (o origin) Profile(ctx context.Context) (link.Profile, error) {
	params, err := o.p.Profile(ctx)
	if err != nil {
		return link.Profile{}, err
	}
	return link.Profile{Parameters: params, Related: o.p.Related()}, nil
}

func (o origin) Open(ctx context.Context, params map[string]string) (link.Stream, error) {
	return o.p.NewSession(ctx, params), nil
}

// defaultKey is the key of connections opened for Profile: what common drivers negotiate.
var defaultKey = makeKey(mysql.CLIENT_MULTI_RESULTS|mysql.CLIENT_PS_MULTI_RESULTS|mysql.CLIENT_DEPRECATE_EOF, 0)

// Profile returns what the origin said in its handshake (see the tunnel contract: protocol,
// server_version, capabilities, collation, status), connecting once if it never has.
func (p *Pool) Profile(ctx context.Context) (map[string]string, error) {
	return pool.AwaitProfile(ctx, func() map[string]string {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.profile
	}, func(ctx context.Context) error {
		c, err := p.acquire(ctx, defaultKey)
		if err == nil {
			p.release(c)
		}
		return err
	})
}

// Stats are the pool's connection counts.
type Stats = pool.Stats

// Stats returns the current connection counts.
func (p *Pool) Stats() Stats { return p.slots.Stats() }

// acquire leases an origin connection with key k: an idle one, a new one if the pool is under
// its limit (closing an idle connection of another key to make room), or the next one released,
// waiting in line for at most the queue timeout.
func (p *Pool) acquire(ctx context.Context, k connKey) (*originConn, error) {
	c, dial, err := p.slots.Take(ctx, k)
	if dial {
		return p.dial(ctx, k)
	}
	return c, err
}

// dial opens a connection for a slot already counted in p.total.
func (p *Pool) dial(ctx context.Context, k connKey) (*originConn, error) {
	if !p.cfg.AllowLoadLocal {
		k &^= connKey(mysql.CLIENT_LOCAL_FILES)
	}
	p.mu.Lock()
	var rel *link.Related
	if p.related == nil {
		rel = new(link.Related)
	}
	p.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	c, h, err := dial(dctx, &p.dc, k, rel)
	cancel()
	if err != nil {
		p.slots.DialFailed()
		p.log.Warn("origin connection failed", "err", safeError(err))
		if errors.Is(err, pool.ErrNoCredential) { // its message was made to be shown, whole
			return nil, fmt.Errorf("mysqlpool: connect to origin: %w", link.NewOriginError(link.OriginUnreachable, err.Error(), "", err))
		}
		return nil, fmt.Errorf("mysqlpool: connect to origin: %w", classifyConnect(err))
	}
	c.home = p
	p.mu.Lock()
	first := p.profile == nil
	if first {
		p.profile = map[string]string{
			"protocol":       "mysql",
			"server_version": h.ServerVersion,
			"capabilities":   strconv.FormatUint(uint64(h.Capabilities), 10),
			"collation":      strconv.Itoa(int(h.Collation)),
			"status":         strconv.Itoa(int(h.Status)),
		}
		if p.dc.tls == tlsOff {
			// The pool asks for them only over plain TCP (login.go's response).
			p.profile["ext_capabilities"] = strconv.FormatUint(uint64(h.ExtCapabilities&extMetadata), 10)
		}
	}
	if p.related == nil && rel != nil {
		p.related = rel
	}
	p.mu.Unlock()
	if c.cred != nil {
		p.creds.Watch(p.ctx, c.cred, p.slots.CloseIdleRetired)
	}
	if first {
		p.probeReset(c)
		p.probeStmtLimit(c)
	}
	return c, nil
}

// Related returns the relations whose rows change together, as the origin's information_schema
// says for its database; zero before the pool first connected.
func (p *Pool) Related() link.Related {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.related == nil {
		return link.Related{}
	}
	return *p.related
}

// catalogChanged reads the related relations again and tells whoever asked
// (OnCatalogChange). It runs before the answer of the statement that changed them goes to its
// client, so that no read cached after the answer is kept by the old ones.
func (p *Pool) catalogChanged() {
	p.refreshRelated()
	p.TellCatalog()
}

// catalogActive reports whether the pool has read the related relations once and still has
// connections: pool.WatchCatalog reads them again only then.
func (p *Pool) catalogActive() bool {
	p.mu.Lock()
	known := p.related != nil
	p.mu.Unlock()
	st := p.slots.Stats()
	return known && st.InUse+st.Idle > 0
}

// refreshRelated reads the related relations again, on a connection of its own (leased
// connections are raw streams), and reports whether they changed. One refresh runs at a time.
func (p *Pool) refreshRelated() (changed bool) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	rel := new(link.Related)
	c, _, err := dial(ctx, &p.dc, defaultKey, rel)
	if err != nil {
		if p.ctx.Err() == nil {
			p.log.Warn("re-reading the origin's related tables failed; the cache keeps the old", "err", safeError(err))
		}
		return false
	}
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	changed = p.related == nil || !p.related.Equal(*rel)
	p.related = rel
	return changed
}

// probeReset learns on the pool's first connection whether the origin takes
// COM_RESET_CONNECTION. One that does not can't hand a connection with a session's state to
// anyone else: sessions that set anything are pinned, and their connections closed after.
func (p *Pool) probeReset(c *originConn) {
	var pr parser
	if c.write(appendCommand(nil, mysql.COM_RESET_CONNECTION, nil)) == nil {
		if _, err := c.readResponse(&pr, rOne, nil); err == nil && !pr.failed {
			return
		}
	}
	if !c.broken {
		p.noReset.Store(true)
		p.log.Warn("the origin refuses COM_RESET_CONNECTION: sessions that change their state keep their connection")
	}
}

// safeError returns the origin's error without anything that could hold the password.
func safeError(err error) string {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return fmt.Sprintf("ERROR %d (%s): %s", me.Code, me.State, me.Message)
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err.Error()
}

// release returns a leased connection. A broken or retired connection is closed instead, and
// its slot goes to the next waiter; so is one whose key the next waiter does not want.
// A connection of the replica pool (replica.go) goes back to that pool.
func (p *Pool) release(c *originConn) {
	if c.home != nil && c.home != p {
		c.home.slots.Release(c)
		return
	}
	p.slots.Release(c)
}

// Close closes the idle connections and refuses new leases; leased connections are closed as
// they come back.
func (p *Pool) Close() {
	p.stop()
	p.slots.Close()
}

// SetMaxConns changes the pool's bound on origin connections, as a configuration reload does;
// see pool.Slots.SetMaxConns.
func (p *Pool) SetMaxConns(n int) { p.slots.SetMaxConns(n) }

// CloseIdle closes the pool's idle connections (another user of the database needs room).
func (p *Pool) CloseIdle() { p.slots.CloseIdle() }

package admin

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/insight"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/proxy"
)

// Pool is one database's pool of origin connections as the console sees it; both pools
// (package pool and pool/mysql) are.
type Pool interface {
	Stats() pool.Stats
	Servers() []pool.ServerConn
	MaxConns() int
	OriginInfo() pool.OriginInfo
	Pause(ctx context.Context) error
	Resume()
	Paused() bool
	Reconnect()
	WaitClose(ctx context.Context) error
	Waited() time.Duration
}

// PoolEntry is a pool with the names it is known by.
type PoolEntry struct {
	// Name is the pool's name in SHOW POOLS and the others: the database's, with "#mysql"
	// after it for the MySQL side of an embedded database served over both protocols.
	Name string
	// Database is the name clients connect to; Protocol proxy.ProtocolPostgres or ProtocolMySQL.
	Database, Protocol string
	// User is the role whose pool this is, for a database that lets any role in (any_role):
	// SHOW POOLS has a row per database and user, as PgBouncer's. "": the pool of the origin
	// URL's user (Pool.OriginInfo().User), the database's own.
	User string
	Pool Pool
}

// user is the user SHOW POOLS and SHOW SERVERS name for p.
func (p PoolEntry) user() string {
	if p.User != "" {
		return p.User
	}
	return p.Pool.OriginInfo().User
}

// ShutdownMode is how SHUTDOWN stops the process.
type ShutdownMode string

// Shutdown modes, as PgBouncer's.
const (
	ShutdownNow            ShutdownMode = ""                 // close everything now
	ShutdownWaitForServers ShutdownMode = "WAIT_FOR_SERVERS" // stop taking clients, end when no transaction runs
	ShutdownWaitForClients ShutdownMode = "WAIT_FOR_CLIENTS" // stop taking clients, end when the last one leaves
)

// Controller is what the running command (cmd/slipstream) does for RELOAD and SHUTDOWN.
type Controller interface {
	// Reload reads the configuration again and applies what it can.
	Reload() error
	// Shutdown stops the process as mode says; it returns at once.
	Shutdown(mode ShutdownMode)
}

// Setting is one row of SHOW CONFIG.
type Setting struct {
	Key, Value, Default string
	// Set changes the setting in the running process (SET key = value) until the configuration
	// is reloaded; nil: it cannot be changed online. Its error is shown to the console user.
	Set func(value string) error
}

// Tunnel is one row of SHOW TUNNELS: how the edge reaches a pool.
type Tunnel struct {
	Pool, Region, Transport, Addr string
	RTT                           time.Duration
	Up                            bool
	// Sessions are the client sessions open over it, where the pool end counts them.
	Sessions int
}

// Placement is one row of SHOW PLACEMENT: which pool serves a database.
type Placement struct {
	Database, Pool, Region string
	RTT                    time.Duration
}

// Config describes a Console.
type Config struct {
	// AdminUsers may run every command; StatsUsers only SHOW (PgBouncer's admin_users and
	// stats_users).
	AdminUsers, StatsUsers []string
	// Password is what both kinds of users log in with; "" lets them in without one, which
	// cmd allows only when the PostgreSQL listener is on loopback (Trust).
	Password string
	// Trust lets AdminUsers and StatsUsers in without a password when Password is "".
	Trust bool
	// Pools returns the pools of every database as of now, in the order they were opened: the
	// configured ones, those a reload opened, those created through the REST APIs, and each
	// role's pool after its database's (any_role). It is called for every command and page,
	// so it must be cheap and safe for concurrent use. nil: no pools.
	Pools func() []PoolEntry
	// Cache is the edge's result cache; nil: nothing is cached.
	Cache *cache.Cache
	// Insight holds the query shapes and per-database totals; nil: none are kept.
	Insight *insight.Recorder
	// Controller does RELOAD and SHUTDOWN; nil refuses them.
	Controller Controller
	// Settings returns SHOW CONFIG's rows as the running configuration has them; SET's values
	// are shown over them until Reloaded. nil: none.
	Settings func() []Setting
	// Tunnels and Placement answer SHOW TUNNELS and SHOW PLACEMENT; nil: no rows.
	Tunnels   func() []Tunnel
	Placement func() []Placement
	// Version is Slipstream's version, shown after PgBouncer's in SHOW VERSION.
	Version string
	// Logger receives console commands that change something; nil means slog.Default().
	Logger *slog.Logger
}

// Console is the admin console of one process.
type Console struct {
	cfg  Config
	log  *slog.Logger
	edge *proxy.Server

	mu        sync.Mutex
	suspended bool
	prev      map[string]statsPoint // SHOW STATS_AVERAGES' previous point per database
	overrides map[string]string     // SET's values, by key, until Reloaded
}

// New returns a console for cfg; Attach gives it the edge before clients can reach it.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Console{cfg: cfg, log: cfg.Logger, prev: make(map[string]statsPoint), overrides: make(map[string]string)}
}

// Attach gives the console the edge whose clients it lists and kills.
func (c *Console) Attach(edge *proxy.Server) { c.edge = edge }

// Credentials implements proxy.Console.
func (c *Console) Credentials(user string) (password string, trust, ok bool) {
	if !c.admin(user) && !slices.Contains(c.cfg.StatsUsers, user) {
		return "", false, false
	}
	if c.cfg.Password == "" {
		return "", c.cfg.Trust, c.cfg.Trust
	}
	return c.cfg.Password, false, true
}

// entries returns the pools as of now (Config.Pools).
func (c *Console) entries() []PoolEntry {
	if c.cfg.Pools == nil {
		return nil
	}
	return c.cfg.Pools()
}

func (c *Console) admin(user string) bool { return slices.Contains(c.cfg.AdminUsers, user) }

// maxConsoleMessage bounds one console client message.
const maxConsoleMessage = 1 << 20

// ServePG implements proxy.Console: it answers the startup like PgBouncer's console, then one
// command per Query message until the client leaves.
func (c *Console) ServePG(ctx context.Context, r *pgwire.Reader, w io.Writer, user string, params map[string]string) {
	out := pgwire.AppendAuthenticationOK(nil)
	for _, kv := range [][2]string{{"server_version", pgbouncerVersion + "/bouncer"}, {"client_encoding", "UTF8"},
		{"server_encoding", "UTF8"}, {"DateStyle", "ISO"}, {"TimeZone", "GMT"}, {"standard_conforming_strings", "on"},
		{"is_superuser", onOff(c.admin(user))}, {"integer_datetimes", "on"}, {"application_name", params["application_name"]}} {
		out = appendParameterStatus(out, kv[0], kv[1])
	}
	var key [8]byte
	rand.Read(key[:])
	out = pgwire.AppendFrame(out, 'K', key[:])
	out = pgwire.AppendReadyForQuery(out, 'I')
	if _, err := w.Write(out); err != nil {
		return
	}
	sess := &consoleSession{c: c, user: user, isAdmin: c.admin(user), w: w}
	for {
		typ, body, err := r.ReadMessage()
		if err != nil {
			return
		}
		switch typ {
		case 'Q':
			if !sess.query(ctx, strings.TrimRight(string(body), "\x00")) {
				return
			}
		case 'X':
			return
		default:
			w.Write(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation,
				"the admin console speaks the simple query protocol only")))
			return
		}
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func appendParameterStatus(dst []byte, k, v string) []byte {
	dst, h := pgwire.BeginFrame(dst, 'S')
	dst = append(append(dst, k...), 0)
	dst = append(append(dst, v...), 0)
	return pgwire.FinishFrame(dst, h)
}

// consoleSession is one console client.
type consoleSession struct {
	c       *Console
	user    string
	isAdmin bool
	w       io.Writer
	buf     []byte
	my      *mysqlFace // nil: PostgreSQL
}

// query runs one Query message's command and writes its answer and ReadyForQuery; it reports
// false when the session is over.
func (s *consoleSession) query(ctx context.Context, q string) bool {
	s.buf = s.buf[:0]
	err := s.run(ctx, q)
	var pe *pgwire.Error
	switch {
	case err == nil:
	case errors.As(err, &pe):
	default:
		pe = pgwire.NewError(pgwire.ProtocolViolation, "command failed")
		s.c.log.Warn("admin console command failed", "user", s.user, "err", err)
	}
	if s.my != nil {
		if pe != nil {
			s.buf = s.my.appendError(s.buf[:0], pe.Message)
		}
		_, werr := s.w.Write(s.buf)
		return werr == nil
	}
	if pe != nil {
		s.buf = pgwire.AppendError(s.buf, pe)
	}
	s.buf = pgwire.AppendReadyForQuery(s.buf, 'I')
	_, werr := s.w.Write(s.buf)
	return werr == nil
}

// consoleError is a console error as PgBouncer sends them: ERROR, SQLSTATE 08P01.
func consoleError(msg string) error { return pgwire.NewError(pgwire.ProtocolViolation, msg) }

func randomID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

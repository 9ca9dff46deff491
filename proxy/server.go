package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/insight"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Database is one database clients can connect to, with the credentials the edge checks.
type Database struct {
	// Name is the database name clients ask for.
	Name string
	// User and Password are the credentials clients must present.
	User, Password string
	// Auth is how the edge checks the password; "" means SCRAM-SHA-256.
	Auth pgwire.AuthMethod
	// Caching is the database's result-cache policy.
	Caching Caching
	// Protocol is the wire protocol clients use: "" or ProtocolPostgres for the PostgreSQL
	// listener (Serve), ProtocolMySQL for the MySQL one (ServeMySQL). A database is served
	// on its protocol's listener only.
	Protocol string
	// MySQLAuth is the authentication plugin a MySQL database asks clients for:
	// "mysql_native_password" or "caching_sha2_password"; "" means mysql_native_password.
	// Auth AuthTrust lets MySQL clients in with any password too.
	MySQLAuth string
	// AllowLocalInfile lets MySQL clients use LOAD DATA LOCAL INFILE; false: CLIENT_LOCAL_FILES
	// is not negotiated and the origin refuses it.
	AllowLocalInfile bool
	// AnyRole lets any role of the origin log in with its own password, checked against the
	// verifier the pool looks up (roles.go); User and Password are then unused.
	AnyRole bool
	// AuthCacheTTL is how long the edge uses a role's verifier before asking the pool again;
	// 0 means a minute. Only with AnyRole.
	AuthCacheTTL time.Duration
	// Origin names the database to the Transport; "" means Name. A database served over both
	// protocols (the embedded D1) is two Databases with one Name and two origins.
	Origin string
}

// origin is the Transport's name for d.
func (d Database) origin() string {
	if d.Origin != "" {
		return d.Origin
	}
	return d.Name
}

// Protocols of Database.Protocol.
const (
	ProtocolPostgres = "postgres"
	ProtocolMySQL    = "mysql"
)

// Config describes an edge.
type Config struct {
	// Databases are the databases served; clients asking for another get SQLSTATE 3D000.
	Databases []Database
	// TLS answers SSLRequest; nil refuses TLS ('N').
	TLS *tls.Config
	// Transport opens sessions on the pool side.
	Transport link.Transport
	// Logger receives session events; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts sessions and errors.
	Metrics *Metrics
	// HandshakeTimeout bounds startup and authentication; 0 means 15 seconds.
	HandshakeTimeout time.Duration
	// MaxMessage bounds one client message; 0 means 256 MiB.
	MaxMessage int
	// Cache keeps cacheable answers; nil caches nothing.
	Cache *cache.Cache
	// Insight, when set, gets every unit of work's shape, time and cache status: PostgreSQL's
	// (observe.go) and MySQL's (mysqlobserve.go).
	Insight *insight.Recorder
	// Console, when set, serves the admin console's databases (ConsoleDatabases).
	Console Console
}

// Server is an edge listener's worth of client sessions.
type Server struct {
	cfg Config
	log *slog.Logger
	m   *Metrics

	dbs          atomic.Pointer[catalog] // the databases served, replaced by SetDatabases
	catMu        sync.Mutex              // held while a new catalog is made from the current one (register.go)
	keys         cancelKeys
	myConns      mysqlConns
	mysqlTLS     *tls.Config // cfg.TLS without PostgreSQL's ALPN name
	classified   classifications
	myClassified mysqlClassifications
	wg           sync.WaitGroup
	draining     atomic.Bool
	active       atomic.Int64
	admin        adminState // set by the admin console (admin.go)
	listeners    listeners  // the listeners Serve and ServeMySQL accept on, which Drain closes
	loops        acceptLoops
	roles        roleVerifiers           // the verifiers of AnyRole databases' roles (roles.go)
	guard        loginGuard              // failed logins by client address (authguard.go)
	handoff      atomic.Pointer[Handoff] // set by HandOver: where sessions that can move go
}

// acceptLoops counts the running accept loops (Serve, ServeMySQL), which share the sessions'
// WaitGroup: only the last one to stop waits on it, and the others wait for that, so that no
// loop waits while another still adds (sync.WaitGroup's rule).
type acceptLoops struct {
	mu   sync.Mutex
	n    int
	done chan struct{} // closed when the last loop has waited for every session
	left bool          // the last loop has left (join refuses from then on)
}

func (l *acceptLoops) enter() {
	l.mu.Lock()
	if l.n == 0 {
		l.done = make(chan struct{})
	}
	l.n++
	l.left = false
	l.mu.Unlock()
}

// leave waits for every session: the last loop to leave calls wait, the others wait for it.
func (l *acceptLoops) leave(wait func()) {
	l.mu.Lock()
	l.n--
	last, done := l.n == 0, l.done
	l.left = last
	l.mu.Unlock()
	if last {
		wait()
		close(done)
		return
	}
	<-done
}

// New returns an edge server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 15 * time.Second
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 256 << 20
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, m: cfg.Metrics}
	s.dbs.Store(s.newCatalog(cfg.Databases))
	if cfg.TLS != nil {
		s.mysqlTLS = cfg.TLS.Clone()
		s.mysqlTLS.NextProtos = nil
	}
	s.keys.m = make(map[pgwire.CancelKey]*session)
	return s
}

// Serve accepts clients on ln until ctx ends, then stops accepting, ends every session and
// waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.accept(ctx, ln, s.serveConn)
}

// accept runs serve for each client ln accepts, until ctx ends, then waits for all sessions.
func (s *Server) accept(ctx context.Context, ln net.Listener, serve func(context.Context, net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	if !s.listeners.add(ln) { // drained already
		ln.Close()
	}
	defer s.listeners.remove(ln)
	s.loops.enter()
	var err error
	for {
		var nc net.Conn
		nc, err = ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			serve(ctx, nc)
		}()
	}
	drained := s.draining.Swap(true)
	s.loops.leave(s.wg.Wait)
	if ctx.Err() != nil || drained {
		return nil
	}
	return err
}

// Ready reports whether the server takes new clients (false once it drains).
func (s *Server) Ready() bool { return !s.draining.Load() }

// Sessions returns the number of client sessions open now.
func (s *Server) Sessions() int64 { return s.active.Load() }

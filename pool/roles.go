package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// DefaultAuthQuery is PgBouncer's auth_query: a role's name and stored password (its
// verifier), which only a superuser may read; docs/roles.md has the SECURITY DEFINER function
// that lets a lookup role without superuser rights read them.
const DefaultAuthQuery = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"

// DefaultAuthCacheTTL is how long a verifier is used before it is looked up again.
const DefaultAuthCacheTTL = time.Minute

// RolesConfig is what a database that lets any role in (any_role) adds to its Config.
type RolesConfig struct {
	// AuthQuery is run by the origin URL's user with the role's name as $1 and returns the
	// role's name and stored password; "" means DefaultAuthQuery.
	AuthQuery string
	// CacheTTL is how long a verifier is kept in memory before it is looked up again; 0 means
	// DefaultAuthCacheTTL. A failed login looks it up again at once.
	CacheTTL time.Duration
	// MaxDBConns bounds the origin connections of every role together; 0 means no bound but
	// each role's Config.MaxConns.
	MaxDBConns int
}

// Roles are the pools of one database that lets any role of the origin log in: one Pool per
// role, created on the role's first session, with Config.MaxConns connections at most each,
// and MaxDBConns for them all. A role's idle connections close after IdleTimeout, as any
// pool's, so an idle role holds nothing on the origin. The base pool, of the origin URL's
// user, reads the origin's profile and catalog and looks verifiers up.
//
// Nothing a role logs in with is ever written down: verifiers and ClientKeys are held in
// memory only, and never logged. Safe for concurrent use.
type Roles struct {
	rc              RolesConfig
	gate            *RoleGate
	verifiers       *VerifierCache
	*RoleSet[*Pool] // the base pool and each role's
}

// NewRoles returns the pools of database cfg.Name for any role. It dials nothing yet.
func NewRoles(cfg Config, rc RolesConfig) (*Roles, error) {
	if rc.AuthQuery == "" {
		rc.AuthQuery = DefaultAuthQuery
	}
	base, err := New(cfg)
	if err != nil {
		return nil, err
	}
	r := &Roles{rc: rc, gate: NewRoleGate(rc.MaxDBConns, cfg.QueueTimeout)}
	r.verifiers = NewVerifierCache(base.ctx, rc.CacheTTL, r.lookup)
	r.RoleSet = NewRoleSet(base, cfg.MaxConns, func(role string, maxConns int) (*Pool, error) {
		cfg := cfg
		cfg.MaxConns = maxConns
		cfg.Metrics = nil // the base pool's figures are the database's; a role's would collide
		cfg.CatalogRefresh = -1
		cfg.Credentials = nil
		cfg.Logger = base.cfg.Logger.With("role", role)
		cfg.Role = &Role{Name: role, roles: r}
		np, err := New(cfg)
		if err == nil && base.Paused() {
			// A role's first session while the database is paused (the admin console's
			// PAUSE) waits for RESUME like the others: its pool starts paused (it has no
			// lease to wait for). The console's RESUME resumes it with the others.
			np.Pause(context.Background())
		}
		return np, err
	})
	return r, nil
}

// Verifier returns role's stored password as the origin has it ("" when the role does not
// exist or has none), from memory when it was looked up less than CacheTTL ago and fresh is
// false. Concurrent calls for one role share one lookup.
func (r *Roles) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return r.verifiers.Get(ctx, role, fresh)
}

// lookup runs the auth query for role on a connection of its own, as the origin URL's user.
func (r *Roles) lookup(ctx context.Context, role string) (string, error) {
	pc, err := pgconn.ConnectConfig(ctx, r.Base().connCfg)
	if err != nil {
		r.Base().log.Warn("looking a role's password up failed: cannot connect", "err", originError(err))
		return "", fmt.Errorf("pool: look the role up: %w", classifyConnect(err))
	}
	defer pc.Close(context.Background())
	res := pc.ExecParams(ctx, r.rc.AuthQuery, [][]byte{[]byte(role)}, nil, nil, nil).Read()
	if res.Err != nil {
		// The query's own error (a missing function, no privilege) names no secret.
		r.Base().log.Warn("the auth_query failed", "err", originError(res.Err))
		return "", fmt.Errorf("pool: auth_query: %s", originError(res.Err))
	}
	if len(res.Rows) > 0 && len(res.Rows[0]) >= 2 {
		return string(res.Rows[0][1]), nil
	}
	return "", nil
}

// forget drops role's verifier, so that the next login looks it up again (the origin refused
// a login with it: the password changed).
func (r *Roles) forget(role string) { r.verifiers.Forget(role) }

// Pool returns role's pool, created on first use. clientKey, when the edge sends one, is the
// ClientKey it recovered from the role's client's SCRAM proof: the role's connections log in
// with the latest that fits the verifier.
func (r *Roles) Pool(ctx context.Context, role string, clientKey []byte) (*Pool, error) {
	if role == "" {
		return nil, errors.New("pool: a session without a role")
	}
	p, err := r.Get(role)
	if err != nil {
		return nil, err
	}
	if p.Paused() && !r.Base().Paused() {
		p.Resume() // RESUME came between the look at the base and the listing of p
	}
	if len(clientKey) > 0 {
		p.cfg.Role.setKey(clientKey)
	}
	return p, nil
}

// RolePools returns the pool of each role that has logged in, by role name.
func (r *Roles) RolePools() map[string]*Pool { return r.ByRole() }

// Role is the login of one role's pool (Config.Role).
type Role struct {
	Name  string
	roles *Roles

	mu  sync.Mutex
	key []byte // the ClientKey the role's latest client proved; nil before one came
}

func (ro *Role) setKey(k []byte) {
	ro.mu.Lock()
	ro.key = k
	ro.mu.Unlock()
}

// dial opens a connection as the role, within the database's MaxDBConns.
func (ro *Role) dial(ctx context.Context, cc *pgconn.Config) (*Conn, map[string]string, error) {
	text, err := ro.roles.Verifier(ctx, ro.Name, false)
	if err != nil {
		return nil, nil, err
	}
	v := pgwire.ParseVerifier(text)
	ro.mu.Lock()
	key := ro.key
	ro.mu.Unlock()
	if v.Kind == pgwire.VerifierSCRAM && !v.ValidClientKey(key) {
		// The verifier changed since the client proved itself, or no client has yet.
		ro.roles.forget(ro.Name)
		return nil, nil, link.NewOriginError(link.OriginLoginRefused, `no login of role "`+ro.Name+`" fits its current password; log in again`, "", nil)
	}
	release, err := ro.roles.takeConn(ctx, ro)
	if err != nil {
		return nil, nil, err
	}
	c, params, err := loginRole(ctx, cc, ro.Name, v, key)
	if err != nil {
		release()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000") {
			ro.roles.forget(ro.Name)
		}
		return nil, nil, err
	}
	c.uncount = release
	return c, params, nil
}

// takeConn counts one more role connection against MaxDBConns, and returns the function that
// uncounts it. When the database is at its bound it has the other roles close their idle
// connections, and waits for a token up to the queue timeout.
func (r *Roles) takeConn(ctx context.Context, self *Role) (func(), error) {
	return r.gate.Take(ctx, func() { r.CloseIdleBut(self.Name) })
}

// Origin returns the pool side of the database: sessions go to the pool of their role
// (params["user"]), with the ClientKey the edge sent (link.ClientKeyParam); the profile is the
// base pool's.
func (r *Roles) Origin() link.RoleOrigin { return rolesOrigin{r} }

type rolesOrigin struct{ r *Roles }

func (o rolesOrigin) Profile(ctx context.Context) (link.Profile, error) {
	return o.r.Base().Origin().Profile(ctx)
}

func (o rolesOrigin) Open(ctx context.Context, params map[string]string) (link.Stream, error) {
	params, key := link.TakeClientKey(params)
	p, err := o.r.Pool(ctx, params["user"], key)
	if err != nil {
		return nil, err
	}
	return p.NewSession(ctx, params), nil
}

func (o rolesOrigin) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return o.r.Verifier(ctx, role, fresh)
}

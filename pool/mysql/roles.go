package mysqlpool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// DefaultAuthQuery looks a role's mysql_native_password verifier up (any_role): its name and
// authentication_string ("*" and SHA1(SHA1(password)) in hex), which only a user with SELECT
// on mysql.global_priv may read; docs/roles.md has a view for a lookup user without it. "?" is
// the role's name, sent as a hex literal (no quoting to get wrong). Of several rows (one user
// at several hosts), the first whose string is a native verifier is used.
const DefaultAuthQuery = "SELECT User, authentication_string FROM mysql.user WHERE User = ?"

// RolesConfig is package pool's: AuthQuery has "?" for the user's name here ("":
// DefaultAuthQuery), CacheTTL and MaxDBConns are as for PostgreSQL.
type RolesConfig = pool.RolesConfig

// Roles are the pools of one MySQL database that lets any user of the origin log in, as
// package pool's Roles are for PostgreSQL, sharing its VerifierCache and RoleGate: one Pool
// per role (made on its first session, Config.MaxConns each, MaxDBConns for all; idle ones
// close after IdleTimeout) and the base pool of the origin URL's user, which reads the
// profile and looks verifiers up. A role's connections log in with the SHA1(password) its
// latest client's scramble revealed at the edge (mysqlwire.RecoverNativeHash); nothing a role
// logs in with is written down or logged.
type Roles struct {
	rc                   RolesConfig
	gate                 *pool.RoleGate
	verifiers            *pool.VerifierCache
	*pool.RoleSet[*Pool] // the base pool and each role's
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
	r := &Roles{rc: rc, gate: pool.NewRoleGate(rc.MaxDBConns, cfg.QueueTimeout)}
	r.verifiers = pool.NewVerifierCache(base.ctx, rc.CacheTTL, r.lookup)
	r.RoleSet = pool.NewRoleSet(base, cfg.MaxConns, func(name string, maxConns int) (*Pool, error) {
		cfg := cfg
		cfg.MaxConns = maxConns
		cfg.Metrics = nil // the base pool's figures are the database's; a role's would collide
		cfg.CatalogRefresh = -1
		cfg.Credentials = nil
		cfg.Logger = base.cfg.Logger.With("role", name)
		p, err := New(cfg)
		if err == nil {
			p.dc.role = &role{name: name, roles: r}
		}
		return p, err
	})
	return r, nil
}

// Verifier returns role's authentication_string as the origin has it ("" when there is no
// such user or it has no native password), from memory unless fresh or older than CacheTTL.
func (r *Roles) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return r.verifiers.Get(ctx, role, fresh)
}

// lookup runs the auth query for role on a connection of its own, as the origin URL's user.
func (r *Roles) lookup(ctx context.Context, role string) (string, error) {
	c, _, err := dial(ctx, &r.Base().dc, defaultKey, nil)
	if err != nil {
		r.Base().log.Warn("looking a user's password up failed: cannot connect", "err", safeError(err))
		return "", fmt.Errorf("mysqlpool: look the user up: %w", classifyConnect(err))
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	}
	rows, err := c.queryRows(authQuery(r.rc.AuthQuery, role))
	if err != nil {
		// The query's own error (no privilege, no such table) names no secret.
		r.Base().log.Warn("the auth_query failed", "err", safeError(err))
		return "", fmt.Errorf("mysqlpool: auth_query: %s", safeError(err))
	}
	for _, row := range rows {
		if len(row) >= 2 {
			if _, ok := mysqlwire.ParseNativeVerifier(row[1]); ok {
				return row[1], nil
			}
		}
	}
	return "", nil
}

// authQuery puts role, as a hex string literal, where q has "?".
func authQuery(q, role string) string {
	return strings.ReplaceAll(q, "?", "CONVERT(X'"+hex.EncodeToString([]byte(role))+"' USING utf8mb4)")
}

// Pool returns role's pool, made on first use. hash, when the edge sent one, is the
// SHA1(password) its client proved: the role's connections log in with the latest.
func (r *Roles) Pool(name string, hash []byte) (*Pool, error) {
	if name == "" {
		return nil, errors.New("mysqlpool: a session without a user")
	}
	p, err := r.Get(name)
	if err != nil {
		return nil, err
	}
	if len(hash) == mysqlwire.NativeHashLen {
		p.dc.role.setHash(hash)
	}
	return p, nil
}

// role is the login of one role's pool (dialConfig.role).
type role struct {
	name  string
	roles *Roles

	mu   sync.Mutex
	hash []byte // SHA1(password) the role's latest client proved; nil before one came
}

func (ro *role) setHash(h []byte) {
	ro.mu.Lock()
	ro.hash = h
	ro.mu.Unlock()
}

// dial opens a connection as the role, within the database's MaxDBConns.
func (ro *role) dial(ctx context.Context, dc *dialConfig, key connKey, rel *link.Related) (*originConn, mysqlwire.Handshake, error) {
	text, err := ro.roles.Verifier(ctx, ro.name, false)
	if err != nil {
		return nil, mysqlwire.Handshake{}, err
	}
	v, _ := mysqlwire.ParseNativeVerifier(text)
	ro.mu.Lock()
	hash := ro.hash
	ro.mu.Unlock()
	if !mysqlwire.ValidNativeHash(hash, v) {
		// The password changed since the client proved itself, or no client has yet.
		ro.roles.verifiers.Forget(ro.name)
		return nil, mysqlwire.Handshake{}, &mysql.MyError{Code: mysql.ER_ACCESS_DENIED_ERROR, State: "28000",
			Message: "no login of user '" + ro.name + "' fits its current password; log in again"}
	}
	release, err := ro.roles.gate.Take(ctx, func() { ro.roles.CloseIdleBut(ro.name) })
	if err != nil {
		return nil, mysqlwire.Handshake{}, err
	}
	c, h, err := dialAs(ctx, dc, account{user: ro.name, hash: hash}, key, rel)
	if err != nil {
		release()
		var me *mysql.MyError
		if errors.As(err, &me) && me.Code == mysql.ER_ACCESS_DENIED_ERROR {
			ro.roles.verifiers.Forget(ro.name)
		}
		return nil, h, err
	}
	c.uncount = release
	return c, h, nil
}

// Origin returns the pool side of the database: sessions go to the pool of their user
// (params["user"]), with the SHA1(password) the edge sent (link.ClientKeyParam, hex); the
// profile is the base pool's.
func (r *Roles) Origin() link.RoleOrigin { return rolesOrigin{r} }

type rolesOrigin struct{ r *Roles }

func (o rolesOrigin) Profile(ctx context.Context) (link.Profile, error) {
	return o.r.Base().Origin().Profile(ctx)
}

func (o rolesOrigin) Open(ctx context.Context, params map[string]string) (link.Stream, error) {
	params, hash := link.TakeClientKey(params)
	p, err := o.r.Pool(params["user"], hash)
	if err != nil {
		return nil, err
	}
	return p.NewSession(ctx, params), nil
}

func (o rolesOrigin) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return o.r.Verifier(ctx, role, fresh)
}

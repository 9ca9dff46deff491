package proxy

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// A database with AnyRole lets any role of the origin log in with its own password, and
// Slipstream holds no password of theirs. The edge asks the pool side for the role's verifier
// (the password as the origin stores it, looked up with auth_query) on the role's first login
// and keeps it in memory for AuthCacheTTL, so that a returning role's login costs no round
// trip. It checks the client against it (pgwire.AuthenticateRole) and passes the ClientKey the
// client's SCRAM proof revealed to the pool side with the session (link.ClientKeyParam),
// which logs in to the origin with it. A failed login makes the next one look the verifier up
// afresh, at the origin: the password may have changed.

// roleLookup is what a Transport answers for a database that lets any role in (tunnel.Local,
// tunnel.Client and placement.Router do).
type roleLookup interface {
	Verifier(ctx context.Context, db, role string, fresh bool) (string, error)
}

// roleVerifiers are the verifiers the edge holds, by database and role. Never logged.
type roleVerifiers struct {
	mu sync.Mutex
	m  map[roleName]roleVerifier
}

type roleName struct{ db, role string }

type roleVerifier struct {
	text  string // as the origin stores it; each protocol parses its own
	at    time.Time
	stale bool // a login with it failed: ask the origin, not the pool's memory
}

// maxRoleVerifiers bounds the edge's memory of verifiers: unknown role names a client tries
// are remembered too (as having none), and past the bound the oldest half is forgotten.
const maxRoleVerifiers = 4096

// roleVerifier returns the verifier of role in db (its stored password, as the origin has
// it: a PostgreSQL verifier, a MySQL authentication_string), from memory when it is fresh
// enough.
func (s *Server) roleVerifier(ctx context.Context, db Database, role string) (string, error) {
	name := roleName{db.origin(), role}
	ttl := db.AuthCacheTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	s.roles.mu.Lock()
	e, ok := s.roles.m[name]
	s.roles.mu.Unlock()
	if ok && !e.stale && time.Since(e.at) < ttl {
		return e.text, nil
	}
	rl, isRL := s.cfg.Transport.(roleLookup)
	if !isRL {
		return "", errors.New("proxy: the transport cannot look roles up")
	}
	text, err := rl.Verifier(ctx, db.origin(), role, ok && e.stale)
	if err != nil {
		return "", err
	}
	s.roles.mu.Lock()
	if s.roles.m == nil {
		s.roles.m = make(map[roleName]roleVerifier)
	}
	if len(s.roles.m) >= maxRoleVerifiers {
		s.roles.evictOldest()
	}
	s.roles.m[name] = roleVerifier{text: text, at: time.Now()}
	s.roles.mu.Unlock()
	return text, nil
}

// evictOldest forgets the older half of the verifiers; r.mu is held.
func (r *roleVerifiers) evictOldest() {
	var newest time.Time
	for _, e := range r.m {
		if e.at.After(newest) {
			newest = e.at
		}
	}
	oldest := newest
	for _, e := range r.m {
		if e.at.Before(oldest) {
			oldest = e.at
		}
	}
	mid := oldest.Add(newest.Sub(oldest) / 2)
	for k, e := range r.m {
		if !e.at.After(mid) {
			delete(r.m, k)
		}
	}
}

// markStale makes the next login of role look its verifier up at the origin.
func (r *roleVerifiers) markStale(db, role string) {
	r.mu.Lock()
	if e, ok := r.m[roleName{db, role}]; ok {
		e.stale = true
		r.m[roleName{db, role}] = e
	}
	r.mu.Unlock()
}

// authenticateRole checks the client's password against its role's verifier and, for SCRAM,
// keeps the ClientKey its proof revealed in the session's parameters for the pool side.
func (s *Server) authenticateRole(ctx context.Context, st *startup) error {
	user := st.params["user"]
	text, err := s.roleVerifier(ctx, st.db, user)
	if err != nil {
		s.log.Warn("looking a role up failed", "db", st.db.Name, "err", err)
		return pgOriginError(err)
	}
	key, err := pgwire.AuthenticateRole(st.nc, st.r, user, pgwire.ParseVerifier(text), st.db.Auth, st.tls)
	var pe *pgwire.Error
	if errors.As(err, &pe) && pe.Code == pgwire.InvalidPassword {
		s.roles.markStale(st.db.origin(), user)
	}
	if err != nil {
		return err
	}
	if key != nil {
		st.params[link.ClientKeyParam] = hex.EncodeToString(key)
	}
	return nil
}

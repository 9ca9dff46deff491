package pool

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

// What the pools of a database that lets any role in (any_role) share, whatever the protocol:
// the roles' verifiers, looked up at the origin and kept in memory (VerifierCache), and the
// database-wide bound on the roles' connections (RoleGate). Package pool's Roles and
// pool/mysql's use both.

// VerifierCache keeps each role's verifier (its stored password, as the origin has it) in
// memory for a TTL; concurrent logins of one role share one lookup. Never written down, never
// logged. Safe for concurrent use.
type VerifierCache struct {
	ctx    context.Context // lookups end with it
	ttl    time.Duration
	lookup func(ctx context.Context, role string) (string, error)

	mu sync.Mutex
	m  map[string]*verifierEntry
}

// verifierEntry is a role's verifier as the origin last said, or a lookup under way (done open).
type verifierEntry struct {
	done chan struct{}
	text string // "" : no such role, or no password
	err  error
	at   time.Time
}

// NewVerifierCache returns a cache that looks verifiers up with lookup, each within 15 seconds
// and ctx, and keeps them for ttl (DefaultAuthCacheTTL when 0).
func NewVerifierCache(ctx context.Context, ttl time.Duration, lookup func(ctx context.Context, role string) (string, error)) *VerifierCache {
	if ttl <= 0 {
		ttl = DefaultAuthCacheTTL
	}
	return &VerifierCache{ctx: ctx, ttl: ttl, lookup: lookup, m: make(map[string]*verifierEntry)}
}

// Get returns role's verifier ("" when the role does not exist or has none), from memory when
// it was looked up less than the TTL ago and fresh is false.
func (vc *VerifierCache) Get(ctx context.Context, role string, fresh bool) (string, error) {
	vc.mu.Lock()
	e := vc.m[role]
	if e != nil {
		select {
		case <-e.done:
			if fresh || e.err != nil || time.Since(e.at) > vc.ttl {
				e = nil
			}
		default: // a lookup under way: share it
		}
	}
	if e == nil {
		if len(vc.m) >= maxVerifiers {
			vc.dropLookedUp() // role names a client made up are remembered too: keep the map bounded
		}
		e = &verifierEntry{done: make(chan struct{})}
		vc.m[role] = e
		go vc.run(role, e)
	}
	vc.mu.Unlock()
	select {
	case <-e.done:
		return e.text, e.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (vc *VerifierCache) run(role string, e *verifierEntry) {
	defer close(e.done)
	ctx, cancel := context.WithTimeout(vc.ctx, 15*time.Second)
	defer cancel()
	e.at = time.Now()
	e.text, e.err = vc.lookup(ctx, role)
}

// maxVerifiers bounds the verifiers a cache keeps; past it, those looked up are forgotten.
const maxVerifiers = 4096

// dropLookedUp forgets every verifier whose lookup has ended; vc.mu is held.
func (vc *VerifierCache) dropLookedUp() {
	for role, e := range vc.m {
		select {
		case <-e.done:
			delete(vc.m, role)
		default:
		}
	}
}

// Forget drops role's verifier, so that the next login looks it up again (the origin refused
// a login with it: the password changed).
func (vc *VerifierCache) Forget(role string) {
	vc.mu.Lock()
	if e := vc.m[role]; e != nil {
		select {
		case <-e.done:
			delete(vc.m, role)
		default:
		}
	}
	vc.mu.Unlock()
}

// RoleGate bounds the origin connections of every role of a database together
// (max_db_connections): one token per open connection. A nil *RoleGate bounds nothing.
type RoleGate struct {
	tokens chan struct{}
	wait   time.Duration
}

// NewRoleGate returns a gate of max tokens whose Take waits up to wait (30 s when 0); nil when
// max is 0 or less.
func NewRoleGate(max int, wait time.Duration) *RoleGate {
	if max <= 0 {
		return nil
	}
	if wait <= 0 {
		wait = 30 * time.Second
	}
	return &RoleGate{tokens: make(chan struct{}, max), wait: wait}
}

// Take counts one more role connection and returns the function that uncounts it. When the
// database is at its bound it calls closeOthersIdle (the other roles close their idle
// connections) and waits for a token, up to the gate's wait.
func (g *RoleGate) Take(ctx context.Context, closeOthersIdle func()) (func(), error) {
	if g == nil {
		return func() {}, nil
	}
	release := func() func() {
		var once sync.Once
		return func() { once.Do(func() { <-g.tokens }) }
	}
	select {
	case g.tokens <- struct{}{}:
		return release(), nil
	default:
	}
	timeout := time.NewTimer(g.wait)
	defer timeout.Stop()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		closeOthersIdle()
		select {
		case g.tokens <- struct{}{}:
			return release(), nil
		case <-retry.C: // a connection of another role may have gone idle since
		case <-timeout.C:
			return nil, fmt.Errorf("%w: the database's max_db_connections are all in use", link.ErrQueueTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// RolePool is what RoleSet needs of a role's pool (package pool's and pool/mysql's Pool).
type RolePool interface {
	comparable
	SetMaxConns(n int)
	CloseIdle()
	Close()
}

// RoleSet is the pools of one database that lets any role in: the base pool, of the origin
// URL's user, and one per role, made on the role's first session by newPool with the current
// max_connections. Safe for concurrent use.
type RoleSet[P RolePool] struct {
	base    P
	newPool func(role string, maxConns int) (P, error)

	mu       sync.Mutex
	maxConns int
	pools    map[string]P
}

// NewRoleSet returns base and no role's pool yet; newPool makes one with the given bound.
func NewRoleSet[P RolePool](base P, maxConns int, newPool func(role string, maxConns int) (P, error)) *RoleSet[P] {
	return &RoleSet[P]{base: base, newPool: newPool, maxConns: maxConns, pools: make(map[string]P)}
}

// Base returns the pool of the origin URL's user.
func (rp *RoleSet[P]) Base() P { return rp.base }

// Get returns role's pool, made on first use; of two made at once, one is kept.
func (rp *RoleSet[P]) Get(role string) (P, error) {
	var zero P
	rp.mu.Lock()
	p, ok := rp.pools[role]
	n := rp.maxConns
	rp.mu.Unlock()
	if ok {
		return p, nil
	}
	np, err := rp.newPool(role, n)
	if err != nil {
		return zero, err
	}
	rp.mu.Lock()
	if p, ok = rp.pools[role]; !ok {
		p, rp.pools[role] = np, np
	}
	rp.mu.Unlock()
	if p != np {
		np.Close()
	}
	return p, nil
}

// SetMaxConns resizes the base pool and every role's, and the pools of roles to come.
func (rp *RoleSet[P]) SetMaxConns(n int) {
	rp.base.SetMaxConns(n)
	for _, p := range rp.all(func() { rp.maxConns = n }) {
		p.SetMaxConns(n)
	}
}

// CloseIdleBut closes the idle connections of every role's pool but role's, to make room under
// max_db_connections.
func (rp *RoleSet[P]) CloseIdleBut(role string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for r, p := range rp.pools {
		if r != role {
			p.CloseIdle()
		}
	}
}

// ByRole returns the pool of each role that has logged in, by role name.
func (rp *RoleSet[P]) ByRole() map[string]P {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return maps.Clone(rp.pools)
}

// Close closes the base pool and every role's.
func (rp *RoleSet[P]) Close() {
	rp.base.Close()
	for _, p := range rp.all(nil) {
		p.Close()
	}
}

// all returns the pools, after running change (when set) under the lock.
func (rp *RoleSet[P]) all(change func()) []P {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if change != nil {
		change()
	}
	out := make([]P, 0, len(rp.pools))
	for _, p := range rp.pools {
		out = append(out, p)
	}
	return out
}

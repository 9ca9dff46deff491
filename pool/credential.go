package pool

import (
	"context"
	"errors"
	"sync"
)

// ErrNoCredential means a CredentialSource has no valid credential: the last one expired and
// the next could not be minted. Sources wrap it with the database and the reason; sessions
// answer it with an error naming the database.
var ErrNoCredential = errors.New("the origin credential expired and no new one could be minted")

// CredentialSource hands out the user and password of each new origin connection, in place of
// the origin URL's, for origins whose credentials rotate (package planetscale mints them). It
// returns the current credential, or an error that names the database and says why there is
// none (a credential past its expiry that could not be replaced): that error is what a session
// waiting for a new connection gets. It must be safe to call from many goroutines.
type CredentialSource func(ctx context.Context) (*Credential, error)

// Credential is a user and password that origin connections are opened with, and the count of
// the connections open with it. Its source retires it once it has minted the next one: from
// then on no connection opens with it, idle connections opened with it are closed at once and
// leased ones as they are released (never in the middle of a transaction or a pinned session),
// and Drained is closed when the last of them has closed, so that the source can delete it.
type Credential struct {
	User, Password string

	mu      sync.Mutex
	conns   int
	retired chan struct{} // closed by Retire
	drained chan struct{} // closed when retired and conns is 0
}

// NewCredential returns a credential in use, with no connection yet.
func NewCredential(user, password string) *Credential {
	return &Credential{User: user, Password: password, retired: make(chan struct{}), drained: make(chan struct{})}
}

// Retire says a newer credential replaces c. It may be called more than once.
func (c *Credential) Retire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.retired:
		return
	default:
	}
	close(c.retired)
	if c.conns == 0 {
		close(c.drained)
	}
}

// IsRetired reports whether Retire was called.
func (c *Credential) IsRetired() bool {
	select {
	case <-c.retired:
		return true
	default:
		return false
	}
}

// Retired is closed when Retire is called.
func (c *Credential) Retired() <-chan struct{} { return c.retired }

// Drained is closed once c is retired and no connection opened with it is still open.
func (c *Credential) Drained() <-chan struct{} { return c.drained }

// Conns returns the number of open connections opened with c.
func (c *Credential) Conns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns
}

// Hold counts one connection about to be opened with c; the function it returns, called once
// when that connection closes (or fails to open), uncounts it; further calls do nothing. It
// reports false, and counts nothing, when c is already retired: ask the source again. Counting
// before dialling is what keeps a dial in flight during a rotation from finding its
// credential deleted.
func (c *Credential) Hold() (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.IsRetired() {
		return nil, false
	}
	c.conns++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.conns--
			if c.conns == 0 && c.IsRetired() {
				close(c.drained)
			}
		})
	}, true
}

// Take returns the current credential of src, counted (Hold) for one connection.
func (src CredentialSource) Take(ctx context.Context) (*Credential, func(), error) {
	for {
		cred, err := src(ctx)
		if err != nil {
			return nil, nil, err
		}
		if release, ok := cred.Hold(); ok {
			return cred, release, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
}

// CredentialWatch closes a pool's idle connections as soon as the credential they were opened
// with is retired: each credential seen by a dial gets one goroutine, which ends with it or with
// the pool (ctx).
type CredentialWatch struct {
	mu   sync.Mutex
	seen map[*Credential]bool
}

// Watch calls closeIdle once cred is retired, unless ctx ends first. Only the first call for a
// credential starts a goroutine.
func (w *CredentialWatch) Watch(ctx context.Context, cred *Credential, closeIdle func()) {
	w.mu.Lock()
	if w.seen == nil {
		w.seen = make(map[*Credential]bool)
	}
	if w.seen[cred] {
		w.mu.Unlock()
		return
	}
	w.seen[cred] = true
	w.mu.Unlock()
	go func() {
		select {
		case <-cred.Retired():
			closeIdle()
		case <-ctx.Done():
		}
		w.mu.Lock()
		delete(w.seen, cred)
		w.mu.Unlock()
	}()
}

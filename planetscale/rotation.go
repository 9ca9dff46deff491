package planetscale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/pool"
)

// DefaultTTL is the life of a minted credential unless configured otherwise.
const DefaultTTL = time.Hour

// RotatorConfig says which credential a Rotator keeps valid.
type RotatorConfig struct {
	// Client calls the API.
	Client *Client
	// Target is the branch, with its Kind (Client.Resolve).
	Target Target
	// DB is Slipstream's name of the database, for logs, metrics and errors.
	DB string
	// Role is the credential's role (Roles); empty means RoleReadWriter.
	Role string
	// Replica mints credentials that reach the replicas.
	Replica bool
	// TTL is the life of each credential; 0 means DefaultTTL. The next one is minted when two
	// thirds of it have passed.
	TTL time.Duration
	// Logger receives rotations and failures, never a password; nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when set, counts rotations and failures.
	Metrics *Metrics
}

// Rotator keeps one minted credential valid for a pool: it mints the first in StartRotator,
// the next when two thirds of the current one's TTL have passed, retires the current one then
// (its connections close as they become idle) and deletes it through the API once its last
// connection has closed, or it has expired. When minting fails it keeps the current credential
// and retries with backoff, capped at a tenth of the TTL, warning and counting each failure,
// for as long as it takes; past the current credential's expiry, Source answers
// pool.ErrNoCredential, until a mint succeeds. Close deletes every credential it minted.
//
// Concurrency: Source may be called from any goroutine; one goroutine of the Rotator's own
// rotates, one per retired credential deletes it, and Close waits for all of them.
type Rotator struct {
	cfg RotatorConfig
	log *slog.Logger
	m   credMetrics

	mu      sync.Mutex
	cur     *minted
	retired []*minted // replaced and not yet deleted
	lastErr error     // the last mint failure while cur is due, for the expiry error

	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// minted is a credential the Rotator minted, and the pool's view of it.
type minted struct {
	api    Credential
	pc     *pool.Credential
	issued time.Time
}

// StartRotator mints the first credential and starts rotating. Its error is the API's (a
// refused token, an unknown branch) and leaves nothing behind.
func StartRotator(ctx context.Context, cfg RotatorConfig) (*Rotator, error) {
	if cfg.Role == "" {
		cfg.Role = RoleReadWriter
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kind := "primary"
	if cfg.Replica {
		kind = "replica"
	}
	r := &Rotator{cfg: cfg, log: cfg.Logger.With("db", cfg.DB, "credential", kind), m: cfg.Metrics.forCredential(cfg.DB, kind)}
	first, err := r.mint(ctx)
	if err != nil {
		return nil, fmt.Errorf("minting a %s credential for %s: %w", cfg.Role, cfg.Target, err)
	}
	r.cur = first
	r.m.expiry.Set(float64(first.api.Expires.Unix()))
	r.log.Info("planetscale credential minted", "id", first.api.ID, "user", first.api.Username, "expires", first.api.Expires.Format(time.RFC3339))
	r.ctx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Current returns the credential new connections use now (its host and database say where
// to connect).
func (r *Rotator) Current() Credential {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur.api
}

// Source is the pool's CredentialSource: the current credential while it is valid.
func (r *Rotator) Source(ctx context.Context) (*pool.Credential, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if exp := r.cur.api.Expires; !exp.IsZero() && !time.Now().Before(exp) {
		why := "the PlanetScale API has not answered yet"
		if r.lastErr != nil {
			why = "the PlanetScale API said: " + r.lastErr.Error()
		}
		return nil, fmt.Errorf("database %s: %w at %s (%s)", r.cfg.DB, pool.ErrNoCredential, exp.UTC().Format(time.RFC3339), why)
	}
	return r.cur.pc, nil
}

// mint mints one credential.
func (r *Rotator) mint(ctx context.Context) (*minted, error) {
	var suffix [4]byte
	rand.Read(suffix[:])
	name := fmt.Sprintf("slipstream-%s-%s-%s", r.cfg.DB, time.Now().UTC().Format("20060102t150405"), hex.EncodeToString(suffix[:]))
	c, err := r.cfg.Client.Mint(ctx, r.cfg.Target, MintRequest{Name: name, Role: r.cfg.Role, TTL: r.cfg.TTL, Replica: r.cfg.Replica})
	if err != nil {
		return nil, err
	}
	issued := time.Now()
	if c.Expires.IsZero() {
		c.Expires = issued.Add(r.cfg.TTL)
	}
	return &minted{api: c, pc: pool.NewCredential(c.Username, c.Password), issued: issued}, nil
}

// run rotates until Close.
func (r *Rotator) run() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		cur := r.cur
		r.mu.Unlock()
		due := cur.issued.Add(cur.api.Expires.Sub(cur.issued) * 2 / 3)
		if !r.sleep(time.Until(due)) {
			return
		}
		next := r.mintNext(cur)
		if next == nil {
			return
		}
		r.mu.Lock()
		r.cur, r.lastErr = next, nil
		r.retired = append(r.retired, cur)
		r.mu.Unlock()
		cur.pc.Retire()
		r.m.rotations.Inc()
		r.m.failing.Set(0)
		r.m.expiry.Set(float64(next.api.Expires.Unix()))
		r.log.Info("planetscale credential rotated", "id", next.api.ID, "user", next.api.Username,
			"expires", next.api.Expires.Format(time.RFC3339), "replaced", cur.api.ID)
		r.wg.Add(1)
		go r.deleteWhenDrained(cur)
	}
}

// mintNext mints the successor of cur, retrying with backoff until it succeeds or Close;
// nil means Close.
func (r *Rotator) mintNext(cur *minted) *minted {
	backoff, maxBackoff := time.Second, min(30*time.Second, max(r.cfg.TTL/10, 100*time.Millisecond))
	backoff = min(backoff, maxBackoff)
	for {
		ctx, cancel := context.WithTimeout(r.ctx, max(maxBackoff, 10*time.Second))
		next, err := r.mint(ctx)
		cancel()
		if err == nil {
			return next
		}
		if r.ctx.Err() != nil {
			return nil
		}
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
		r.m.mintFailures.Inc()
		r.m.failing.Set(1)
		if left := time.Until(cur.api.Expires); left > 0 {
			r.log.Warn("planetscale: minting the next credential failed; serving on the current one and retrying",
				"err", err, "expires_in", left.Round(time.Millisecond), "retry_in", backoff)
		} else {
			r.log.Warn("planetscale: the credential has expired and minting the next one failed; new origin connections fail until it succeeds",
				"err", err, "retry_in", backoff)
		}
		if !r.sleep(backoff) {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// deleteWhenDrained deletes a retired credential once no connection uses it, or once it has
// expired, or at Close (which deletes it then).
func (r *Rotator) deleteWhenDrained(old *minted) {
	defer r.wg.Done()
	t := time.NewTimer(time.Until(old.api.Expires))
	defer t.Stop()
	select {
	case <-old.pc.Drained():
	case <-t.C:
	case <-r.ctx.Done():
		return
	}
	backoff := time.Second
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		err := r.cfg.Client.Delete(ctx, r.cfg.Target, old.api.ID)
		cancel()
		if err == nil {
			r.forget(old)
			r.m.deleted.Inc()
			r.log.Info("planetscale credential deleted", "id", old.api.ID, "user", old.api.Username)
			return
		}
		if r.ctx.Err() != nil {
			return // Close deletes it
		}
		r.log.Warn("planetscale: deleting a replaced credential failed; retrying", "id", old.api.ID, "err", err)
		if !r.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// forget drops old from the retired list.
func (r *Rotator) forget(old *minted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, m := range r.retired {
		if m == old {
			r.retired = append(r.retired[:i], r.retired[i+1:]...)
			return
		}
	}
}

// sleep waits d, or until Close; it reports whether the Rotator is still running.
func (r *Rotator) sleep(d time.Duration) bool {
	if d <= 0 {
		return r.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// Close stops rotating and deletes every credential the Rotator minted and has not deleted
// yet; call it after the pools using them have closed. ctx bounds the deletes.
func (r *Rotator) Close(ctx context.Context) error {
	r.stop()
	r.wg.Wait()
	r.mu.Lock()
	all := append(r.retired, r.cur)
	r.retired = nil
	r.mu.Unlock()
	var errs []error
	for _, m := range all {
		m.pc.Retire()
		if err := r.cfg.Client.Delete(ctx, r.cfg.Target, m.api.ID); err != nil {
			errs = append(errs, fmt.Errorf("planetscale: deleting %s of %s: %w", m.api, r.cfg.DB, err))
			continue
		}
		r.m.deleted.Inc()
		r.log.Info("planetscale credential deleted", "id", m.api.ID, "user", m.api.Username)
	}
	return errors.Join(errs...)
}

package tunnel

import (
	"context"
	"fmt"

	"github.com/slipstream-proxy/slipstream/pool"
)

// Errors a Stream reports, whatever the transport.
var (
	// ErrTerminated follows the client's Terminate message.
	ErrTerminated = pool.ErrTerminated
	// ErrOriginLost means the origin connection broke under the session; nothing is retried.
	ErrOriginLost = pool.ErrOriginLost
	// ErrQueueTimeout means no origin connection became free in time.
	ErrQueueTimeout = pool.ErrQueueTimeout
)

// Local is the in-process transport of `slipstream serve`: the pool side runs in the edge's
// process and a Stream is the pool's own session, called directly.
type Local struct {
	pools map[string]*pool.Pool
}

// NewLocal returns a transport to the given pools, keyed by database name.
func NewLocal(pools map[string]*pool.Pool) *Local { return &Local{pools: pools} }

func (l *Local) pool(db string) (*pool.Pool, error) {
	p := l.pools[db]
	if p == nil {
		return nil, fmt.Errorf("tunnel: no pool for database %q", db)
	}
	return p, nil
}

// Profile implements Transport.
func (l *Local) Profile(ctx context.Context, db string) (Profile, error) {
	p, err := l.pool(db)
	if err != nil {
		return Profile{}, err
	}
	params, err := p.Profile(ctx)
	if err != nil {
		return Profile{}, err
	}
	return Profile{Parameters: params, Volatility: p.Volatility()}, nil
}

// Open implements Transport.
func (l *Local) Open(ctx context.Context, db string, params map[string]string) (Stream, error) {
	p, err := l.pool(db)
	if err != nil {
		return nil, err
	}
	return p.NewSession(ctx, params), nil
}

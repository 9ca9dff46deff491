package tunnel

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/slipstream-proxy/slipstream/link"
)

// Local is the in-process transport of `slipstream serve`: the pool side runs in the edge's
// process and a Stream is the pool's own session, called directly.
type Local struct {
	mu      sync.RWMutex
	origins map[string]link.Origin
}

// NewLocal returns a transport to the given origins, keyed by database name. It keeps a copy
// of the map: change it through Set and Delete.
func NewLocal(origins map[string]link.Origin) *Local { return &Local{origins: maps.Clone(origins)} }

// Set adds the origin of database db, or replaces it for sessions opened from now on, as a
// configuration reload does.
func (l *Local) Set(db string, o link.Origin) {
	l.mu.Lock()
	l.origins[db] = o
	l.mu.Unlock()
}

// Add makes o the origin of database db, for a database created while the process runs (the
// D1 and KV REST APIs); it fails when db has an origin already.
func (l *Local) Add(db string, o link.Origin) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.origins[db]; taken {
		return fmt.Errorf("tunnel: database %q has an origin already", db)
	}
	l.origins[db] = o
	return nil
}

// Remove forgets database db's origin, as Delete does.
func (l *Local) Remove(db string) { l.Delete(db) }

// Delete removes database db: sessions opened from now on fail; open ones are unaffected.
func (l *Local) Delete(db string) {
	l.mu.Lock()
	delete(l.origins, db)
	l.mu.Unlock()
}

func (l *Local) origin(db string) (link.Origin, error) {
	l.mu.RLock()
	o := l.origins[db]
	l.mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("tunnel: no pool for database %q", db)
	}
	return o, nil
}

// Profile implements Transport.
func (l *Local) Profile(ctx context.Context, db string) (link.Profile, error) {
	o, err := l.origin(db)
	if err != nil {
		return link.Profile{}, err
	}
	return o.Profile(ctx)
}

// Open implements Transport.
func (l *Local) Open(ctx context.Context, db string, params map[string]string) (link.Stream, error) {
	o, err := l.origin(db)
	if err != nil {
		return nil, err
	}
	return o.Open(ctx, params)
}

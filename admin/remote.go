package admin

import (
	"context"
	"errors"
	"time"

	"github.com/slipstream-proxy/slipstream/pool"
)

// errRemotePool refuses what needs origin connections on an edge, which has none.
var errRemotePool = errors.New("the origin connections are the pool's (slipstream pool): run this on its console")

// RemotePool is a database's pool as an edge sees it: its origin connections live in the pool
// process at the other end of the tunnel, so it has none to count, pause or close here.
// SHOW POOLS and SHOW DATABASES list it with the edge's clients; PAUSE and SUSPEND are
// refused with errRemotePool; RESUME, RECONNECT and WAIT_CLOSE have nothing to do.
func RemotePool(origin pool.OriginInfo) Pool { return remotePool{origin} }

type remotePool struct{ origin pool.OriginInfo }

func (remotePool) Stats() pool.Stats                   { return pool.Stats{} }
func (remotePool) Servers() []pool.ServerConn          { return nil }
func (remotePool) MaxConns() int                       { return 0 }
func (r remotePool) OriginInfo() pool.OriginInfo       { return r.origin }
func (remotePool) Pause(ctx context.Context) error     { return errRemotePool }
func (remotePool) Resume()                             {}
func (remotePool) Paused() bool                        { return false }
func (remotePool) Reconnect()                          {}
func (remotePool) WaitClose(ctx context.Context) error { return nil }
func (remotePool) Waited() time.Duration               { return 0 }

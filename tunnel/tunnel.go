package tunnel

import (
	"fmt"

	"github.com/slipstream-proxy/slipstream/link"
)

// The edge-pool contract the tunnel carries is package link's; these names are link's own,
// so that the edge can speak of one transport.
type (
	Transport = link.Transport
	Stream    = link.Stream
	Origin    = link.Origin
	Profile   = link.Profile
	Related   = link.Related
)

// Errors a Stream reports, whatever the transport.
var (
	ErrTerminated   = link.ErrTerminated
	ErrOriginLost   = link.ErrOriginLost
	ErrOriginEnded  = link.ErrOriginEnded
	ErrQueueTimeout = link.ErrQueueTimeout
	// ErrPoolLost is the ErrOriginLost of a session whose tunnel to the pool failed under it: the
	// pool end or the connection to it is gone. What was in flight may or may not have run;
	// a read outside a transaction may be sent again over another pool, nothing else.
	ErrPoolLost = fmt.Errorf("%w: the connection to the pool was lost", ErrOriginLost)
)

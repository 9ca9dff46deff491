package tunnel

import (
	"fmt"

	"github.com/slipstream-proxy/slipstream/link"
)

// The edge-pool contract the tunnel carries (Stream, Origin, Transport, Profile, the errors) is
// package link's.

// ErrPoolLost is the link.ErrOriginLost of a session whose tunnel to the pool failed under it:
// the pool end or the connection to it is gone. What was in flight may or may not have run; a
// read outside a transaction may be sent again over another pool, nothing else.
var ErrPoolLost = fmt.Errorf("%w: the connection to the pool was lost", link.ErrOriginLost)

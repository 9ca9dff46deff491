package poolend

import (
	"context"

	"github.com/slipstream-proxy/slipstream/link"
)

// roleOrigin is the pool end in front of an origin that lets any role log in: its role
// lookups go straight to the origin.
type roleOrigin struct {
	origin
	ro link.RoleOrigin
}

func (o roleOrigin) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return o.ro.Verifier(ctx, role, fresh)
}

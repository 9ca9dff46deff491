package placement

import (
	"context"
	"fmt"

	"github.com/slipstream-proxy/slipstream/link"
)

// roleLookup is what a pool's transport answers for a database that lets any role of the
// origin log in (tunnel.Client and tunnel.Local do).
type roleLookup interface {
	Verifier(ctx context.Context, db, role string, fresh bool) (string, error)
}

// Verifier asks the best pool that answers for role's verifier in database db, as Profile
// asks for its profile.
func (r *Router) Verifier(ctx context.Context, db, role string, fresh bool) (string, error) {
	var errs []error
	for _, m := range r.order(db) {
		rl, ok := m.c.Transport.(roleLookup)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: the transport cannot look roles up", m.c.Region))
			continue
		}
		v, err := rl.Verifier(ctx, db, role, fresh)
		if err == nil {
			return v, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.c.Region, err))
		if ctx.Err() != nil {
			break
		}
		r.markDown(ctx, m)
	}
	return "", r.failed(db, errs)
}

// measuredRoleOrigin is Measured's wrapper of an origin that lets any role in.
type measuredRoleOrigin struct {
	measuredOrigin
	ro link.RoleOrigin
}

func (m measuredRoleOrigin) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return m.ro.Verifier(ctx, role, fresh)
}

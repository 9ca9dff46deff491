package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipstream-proxy/slipstream/config"
)

// reloading resolves the PlanetScale databases of a configuration read again (next) before a
// reload compares it with the running one (serveReloader.apply). A database configured as
// before (its planetscale:// origin, service_token_file and credential_ttl unchanged) gets the
// origin, kind and invalidation it runs with, so that the reload keeps its pool and its
// credentials; one that is new, or whose origin, token file or TTL changed, is resolved and
// minted for as at start (start), and the reload opens its pool. Its replica settings are
// next's: reattachReplicas applies them once the reload has swapped. A refusal of the API is
// the reload's error; a credential minted for it before another database failed is deleted
// at shutdown.
func (ps *planetScales) reloading(next *config.Config, reg prometheus.Registerer) error {
	if ps == nil {
		return nil
	}
	for i := range next.Databases {
		d := &next.Databases[i]
		if !d.IsPlanetScale() {
			continue
		}
		if api, ok := ps.apis[d.Name]; ok && d.Origin == api.raw.Origin && d.ServiceTokenFile == api.raw.ServiceTokenFile &&
			d.CredentialTTL == api.raw.CredentialTTL {
			d.SetPlanetScaleKind(api.target.Kind)
			d.Origin = api.resolved.Origin
			d.Invalidation = config.InvalidationTTL
			continue
		}
		if err := ps.start(context.Background(), d, reg); err != nil {
			return err
		}
	}
	if err := next.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

// reloaded applies a reload's replica settings once it has swapped (reattachReplicas); a
// database whose replicas can't be attached reads from its primary, which the log says.
func (ps *planetScales) reloaded(next config.Config, og *origins) {
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ps.reattachReplicas(ctx, next, og)
}

package link

import (
	"context"
	"encoding/hex"
	"maps"
)

// A database that lets any role of the origin log in (any_role) needs two things of the link:
// the edge asks the pool side for a role's verifier (the password as the origin stores it),
// which it keeps for the role's next logins, and each session it opens carries the ClientKey
// the client's SCRAM proof revealed (ClientKeyParam), so that the pool side logs in to the
// origin as the role. Neither is ever logged.

// ClientKeyParam is the Open parameter that carries a role's ClientKey (for MySQL, the
// SHA1(password) its client's scramble revealed), hex, from the edge to the pool side, which takes it out of the parameters before anything else sees them. Its name
// is a protocol option's (_pq_.*): the edge drops every such parameter a client sends at
// startup, so a client cannot set it, and none is a setting.
const ClientKeyParam = "_pq_.slipstream.client_key"

// RoleOrigin is an Origin that lets any role of the origin log in.
type RoleOrigin interface {
	Origin
	// Verifier returns role's stored password as the origin has it; "" when there is none.
	// fresh skips the pool side's memory of it (a login with it just failed).
	Verifier(ctx context.Context, role string, fresh bool) (string, error)
}

// TakeClientKey returns params without ClientKeyParam, and the key it carried (nil when none,
// or not hex). params itself is left alone: the in-process transport hands over the edge's
// own map.
func TakeClientKey(params map[string]string) (map[string]string, []byte) {
	v, ok := params[ClientKeyParam]
	if !ok {
		return params, nil
	}
	key, _ := hex.DecodeString(v)
	params = maps.Clone(params)
	delete(params, ClientKeyParam)
	return params, key
}

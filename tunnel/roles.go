package tunnel

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/slipstream-proxy/slipstream/pool"
)

// A database that lets any role of the origin log in (pool.Roles) needs two things of the
// transport: the edge asks the pool end for a role's verifier (Verifier, kindRole streams over
// QUIC), which it keeps for the next logins, and each session it opens carries the ClientKey
// the client's proof revealed (ClientKeyParam), so that the pool end logs in to the origin as
// the role. Both cross only the tunnel's mutual TLS, and neither is ever logged.

// ClientKeyParam is the Open parameter that carries a role's ClientKey, hex, from the edge to
// the pool end, which takes it out of the parameters before anything else sees them. Its name
// is a protocol option's (_pq_.*): the edge drops every such parameter a client sends at
// startup, so a client cannot set it, and none is a setting.
const ClientKeyParam = "_pq_.slipstream.client_key"

// RoleOrigin is an Origin that lets any role of the origin log in.
type RoleOrigin interface {
	Origin
	// Verifier returns role's stored password as the origin has it; "" when there is none.
	// fresh skips the pool end's memory of it (a login with it just failed).
	Verifier(ctx context.Context, role string, fresh bool) (string, error)
}

// RolesOrigin is the Origin of a PostgreSQL database that lets any role log in: sessions go to
// the pool of their role (params["user"]); the profile is the base pool's.
func RolesOrigin(r *pool.Roles) RoleOrigin { return rolesOrigin{r} }

type rolesOrigin struct{ r *pool.Roles }

func (o rolesOrigin) Profile(ctx context.Context) (Profile, error) {
	return pgOrigin{o.r.Base()}.Profile(ctx)
}

func (o rolesOrigin) Open(ctx context.Context, params map[string]string) (Stream, error) {
	key, _ := hex.DecodeString(params[ClientKeyParam])
	if _, ok := params[ClientKeyParam]; ok {
		params = maps.Clone(params) // the in-process transport hands over the edge's own map
		delete(params, ClientKeyParam)
	}
	p, err := o.r.Pool(ctx, params["user"], key)
	if err != nil {
		return nil, err
	}
	return p.NewSession(ctx, params), nil
}

func (o rolesOrigin) Verifier(ctx context.Context, role string, fresh bool) (string, error) {
	return o.r.Verifier(ctx, role, fresh)
}

// roleOrigin returns db's origin if it lets any role in.
func roleOrigin(o Origin, db string) (RoleOrigin, error) {
	ro, ok := o.(RoleOrigin)
	if !ok {
		return nil, fmt.Errorf("tunnel: database %q does not let any role in (any_role)", db)
	}
	return ro, nil
}

// Verifier returns role's verifier from the pool of database db, which must let any role in.
func (l *Local) Verifier(ctx context.Context, db, role string, fresh bool) (string, error) {
	o, err := l.origin(db)
	if err != nil {
		return "", err
	}
	ro, err := roleOrigin(o, db)
	if err != nil {
		return "", err
	}
	return ro.Verifier(ctx, role, fresh)
}

// appendRoleRequest encodes a kindRole request: database NUL role NUL fresh-byte.
func appendRoleRequest(dst []byte, db, role string, fresh bool) []byte {
	dst = appendStrings(dst, db, role)
	if fresh {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// parseRoleRequest decodes a kindRole request.
func parseRoleRequest(b []byte) (db, role string, fresh bool, err error) {
	db, b, ok := cutString(b)
	role, b, ok2 := cutString(b)
	if !ok || !ok2 || len(b) != 1 {
		return "", "", false, fmt.Errorf("%w: malformed role request", errBadFrame)
	}
	return db, role, b[0] == 1, nil
}

// Verifier implements the edge's side of a role lookup: it asks the pool end on a stream of
// its own.
func (c *Client) Verifier(ctx context.Context, db, role string, fresh bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectWait+15*time.Second)
	defer cancel()
	typ, b, err := c.request(ctx, nil, kindRole, frameOpen, appendRoleRequest(nil, db, role, fresh))
	if err != nil {
		return "", err
	}
	switch typ {
	case frameVerifier:
		return string(b), nil
	case frameError:
		return "", decodeError(b)
	}
	return "", fmt.Errorf("%w: unexpected answer %q to a role request", errBadFrame, typ)
}

// serveRole answers one role lookup.
func (c *serverConn) serveRole(ctx context.Context, str *quic.Stream) {
	defer str.Close()
	typ, b, err := readFrame(str, nil)
	if err != nil || typ != frameOpen {
		return
	}
	db, role, fresh, err := parseRoleRequest(b)
	if err != nil {
		str.Write(appendError(nil, err))
		return
	}
	o := c.s.cfg.Origins[db]
	if o == nil {
		str.Write(appendError(nil, errNoDatabase))
		return
	}
	ro, err := roleOrigin(o, db)
	if err != nil {
		str.Write(appendError(nil, err))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := ro.Verifier(ctx, role, fresh)
	if err != nil {
		str.Write(appendError(nil, err))
		return
	}
	str.Write(appendFrame(nil, frameVerifier, []byte(v)))
}

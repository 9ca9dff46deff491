package tunnel

import (
	"context"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/slipstream-proxy/slipstream/link"
)

// Role lookups for a database that lets any role in (link.RoleOrigin): the edge asks the pool
// end for a role's verifier on a kindRole stream of its own (Client.Verifier), or in process
// (Local.Verifier).

// roleOrigin returns db's origin if it lets any role in.
func roleOrigin(o link.Origin, db string) (link.RoleOrigin, error) {
	ro, ok := o.(link.RoleOrigin)
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

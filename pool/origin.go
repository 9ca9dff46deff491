package pool

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipstream-proxy/slipstream/link"
)

// NetworkDetail describes a failure to reach an address, such as "cannot connect to
// 127.0.0.1:5432: connection refused", when err holds a *net.OpError.
func NetworkDetail(err error) (string, bool) {
	var op *net.OpError
	if !errors.As(err, &op) {
		return "", false
	}
	what := "cannot connect to "
	if op.Op != "dial" {
		what = "lost the connection to "
	}
	addr := ""
	if op.Addr != nil {
		addr = op.Addr.String()
	}
	return what + addr + ": " + unwrapAll(op.Err), true
}

// classifyConnect turns pgconn's connect error into an OriginError by the origin's SQLSTATE.
func classifyConnect(err error) *link.OriginError {
	if oe := (*link.OriginError)(nil); errors.As(err, &oe) { // classified already (a role's login, roles.go)
		return oe
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code := "SQLSTATE " + pe.Code
		switch pe.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return link.NewOriginError(link.OriginLoginRefused, pe.Message, code, err)
		case "3D000": // invalid_catalog_name
			return link.NewOriginError(link.OriginNoDatabase, pe.Message, code, err)
		}
		return link.NewOriginError(link.OriginUnreachable, pe.Message, code, err)
	}
	if detail, ok := NetworkDetail(err); ok {
		return link.NewOriginError(link.OriginUnreachable, detail, "", err)
	}
	return link.NewOriginError(link.OriginUnreachable, originError(err), "", err)
}

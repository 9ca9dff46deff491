package pool

import (
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Refusal is why an origin could not be connected to, in terms both protocols' clients can be
// told: the edge turns it into SQLSTATE 28P01, 3D000 or 57P03 for PostgreSQL clients and
// error 1045, 1049 or 1105 for MySQL ones, whichever protocol the origin speaks.
type Refusal byte

const (
	// OriginUnreachable: nothing answered, TLS failed, or the origin refused for another reason
	// (too many connections, shutting down).
	OriginUnreachable Refusal = iota + 1
	// OriginLoginRefused: the origin refused Slipstream's login, with the user and password of
	// the origin URL; the client's own login to Slipstream had succeeded.
	OriginLoginRefused
	// OriginNoDatabase: the origin has no database of the origin URL's name.
	OriginNoDatabase
)

// OriginError is a failed connection to the origin, classified. Its text is safe to log and to
// show a client: the origin's own message or the innermost network error, never the
// connection string (which holds the password).
type OriginError struct {
	Refusal Refusal
	Detail  string // the origin's message, such as `password authentication failed for user "app"`, or the network's
	Code    string // the origin's own code, "SQLSTATE 28P01" or "error 1045"; empty when it sent none
	err     error  // the connect error, for errors.Is (context errors)
}

func (e *OriginError) Error() string {
	var msg string
	switch e.Refusal {
	case OriginLoginRefused:
		msg = "the origin refused Slipstream's login: " + e.Detail
	case OriginNoDatabase:
		msg = "the origin has no such database: " + e.Detail
	default:
		msg = "the origin is not reachable: " + e.Detail
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}

func (e *OriginError) Unwrap() error { return e.err }

// NewOriginError returns an OriginError; err, which may be nil, is what it unwraps to.
func NewOriginError(r Refusal, detail, code string, err error) *OriginError {
	return &OriginError{Refusal: r, Detail: detail, Code: code, err: err}
}

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
func classifyConnect(err error) *OriginError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code := "SQLSTATE " + pe.Code
		switch pe.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return NewOriginError(OriginLoginRefused, pe.Message, code, err)
		case "3D000": // invalid_catalog_name
			return NewOriginError(OriginNoDatabase, pe.Message, code, err)
		}
		return NewOriginError(OriginUnreachable, pe.Message, code, err)
	}
	if detail, ok := NetworkDetail(err); ok {
		return NewOriginError(OriginUnreachable, detail, "", err)
	}
	return NewOriginError(OriginUnreachable, originError(err), "", err)
}

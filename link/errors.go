package link

import (
	"errors"
	"fmt"
)

// Errors a Stream reports, whatever the transport and the protocol.
var (
	// ErrTerminated is returned by Send after the client's Terminate message.
	ErrTerminated = errors.New("pool: client terminated the session")
	// ErrOriginLost means the origin connection broke while the session used it. The session
	// cannot go on: whatever was in flight may or may not have run, and is never retried.
	ErrOriginLost = errors.New("pool: origin connection lost")
	// ErrOriginEnded is the ErrOriginLost of a session whose origin connection ended after the
	// origin said why: its FATAL ErrorResponse (57P01 admin_shutdown after pg_terminate_backend
	// or a shutdown, 57P05 idle_session_timeout...) has gone to the client as PostgreSQL sent
	// it, and nothing more should follow it: the client's connection ends, as it would direct.
	ErrOriginEnded = fmt.Errorf("%w: the origin ended the connection and told the client why", ErrOriginLost)
	// ErrQueueTimeout means every origin connection stayed busy for the whole queue timeout.
	ErrQueueTimeout = errors.New("pool: timed out waiting for an origin connection")
	// ErrClosed means the pool or the session was closed.
	ErrClosed = errors.New("pool: closed")
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

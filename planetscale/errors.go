package planetscale

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is an answer of the PlanetScale API other than success: its HTTP status and the
// code and message of its JSON body ({"code":"not_found","message":"Not Found"}). It never
// holds the token or a password: the request is named by method and path only, and a
// credential's path names its id, not its password.
type APIError struct {
	Method, Path string // the request, such as GET /organizations/acme/databases
	Status       int    // HTTP status code
	Code         string // the body's code, such as "not_found"; empty if the body had none
	Message      string // the body's message, or the start of a body that was not JSON
}

func (e *APIError) Error() string {
	said := e.Message
	if e.Code != "" {
		said = e.Code + ": " + e.Message
	}
	if said == "" {
		said = http.StatusText(e.Status)
	}
	return fmt.Sprintf("planetscale API: %s %s: %d (%s)", e.Method, e.Path, e.Status, said)
}

// IsUnauthorized reports whether err is the API refusing the service token (401 or 403).
func IsUnauthorized(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden)
}

// IsNotFound reports whether err is the API saying that what was named does not exist (404),
// or that the token may not see it, which PlanetScale answers the same way.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// retryable reports whether a request that got status may be sent again: the API asked to
// slow down (429) or failed on its side (5xx).
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

package pool

// isFatal reports whether an ErrorResponse body is FATAL or PANIC: the origin closes the
// connection after it.
func isFatal(body []byte) bool {
	sev := errorField(body, 'V') // not localized; PostgreSQL 9.6 and later
	if sev == nil {
		sev = errorField(body, 'S')
	}
	return string(sev) == "FATAL" || string(sev) == "PANIC"
}

// endsIdleConn reports whether an ErrorResponse body is the FATAL that PostgreSQL sends on a
// connection it ends from outside the connection's own work, and that a backend waiting for
// its next message sends before it has read one: admin_shutdown (pg_terminate_backend, a
// smart or fast shutdown) and idle_session_timeout.
func endsIdleConn(body []byte) bool {
	if !isFatal(body) {
		return false
	}
	switch string(errorField(body, 'C')) {
	case "57P01", "57P05":
		return true
	}
	return false
}

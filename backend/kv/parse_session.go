package kv

import (
	"errors"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// The session statements drivers and the pool send, matched so that the session can answer
// them itself: SET, RESET, SHOW and set_config as package pgserver reads them, and the words
// after COMMIT and ROLLBACK.

// session reads SET, RESET, SHOW or set_config; SHOW ALL is refused, as before pgserver read
// it.
func (p *parser) session() error {
	st, err := pgserver.ParseSession(p.Tokens)
	var se *pgserver.SessionError
	if errors.As(err, &se) {
		return &parseError{se.Msg}
	}
	if err != nil {
		return err
	}
	if st.Verb == pgserver.Show && st.Name == "" {
		return p.Fail("SHOW ALL is not supported")
	}
	p.st.verb, p.st.session, p.st.tag = vSession, st, st.Tag()
	return nil
}

// transactionTail reads the optional WORK or TRANSACTION after COMMIT or ROLLBACK.
func (p *parser) transactionTail() error {
	if !p.Accept("WORK") {
		p.Accept("TRANSACTION")
	}
	return p.End()
}

package proxy

import (
	"context"
	"encoding/hex"
	"net"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// A MySQL database with AnyRole lets any user of the origin log in with its own password, as a
// PostgreSQL one does (roles.go), and shares its memory of verifiers (roleVerifier): here a
// verifier is the user's authentication_string, "*" and SHA1(SHA1(password)) in hex. The edge
// checks the client's mysql_native_password scramble against it, which reveals SHA1(password)
// (mysqlwire.RecoverNativeHash); that goes to the pool side with the session
// (link.ClientKeyParam, hex), which logs in to the origin as the user with it. A user whose
// password is stored by another plugin, or who has none, cannot log in this way: the client
// gets MariaDB's 1045, worded as for a wrong password.

// mysqlLogin is the account a client of db logging in as user must prove: db's own, or with
// AnyRole the user's verifier as the pool side looked it up.
func (s *Server) mysqlLogin(ctx context.Context, db Database, user string) (mysqlwire.Account, error) {
	if !db.AnyRole || db.Auth == "trust" {
		return mysqlAccount(db), nil
	}
	text, err := s.roleVerifier(ctx, db, user)
	if err != nil {
		s.log.Warn("looking a user up failed", "db", db.Name, "err", err)
		return mysqlwire.Account{}, mysqlOriginError(err)
	}
	v, _ := mysqlwire.ParseNativeVerifier(text)
	return mysqlwire.Account{User: user, AnyRole: true, Verifier: v}, nil
}

// mysqlRefusing is what the connection phase of a client at remote calls before it sends an
// ERR: a refused password (1045) is counted against the client's address and slowed down
// after repeated failures, and makes the next login of that user in the database db returns
// look its verifier up at the origin (the password may have changed).
func (s *Server) mysqlRefusing(ctx context.Context, remote net.Addr, db func() Database) func(*mysqlwire.Error, string) {
	return func(e *mysqlwire.Error, user string) {
		if e.Code != mysqlwire.ErAccessDenied {
			return
		}
		if d := db(); d.AnyRole {
			s.roles.markStale(d.origin(), user)
		}
		s.slowRefusal(ctx, remote)
	}
}

// withPasswordHash adds the SHA1(password) an AnyRole login revealed to a session's Open
// parameters, for the pool side.
func withPasswordHash(params map[string]string, hash []byte) map[string]string {
	if len(hash) > 0 {
		params[link.ClientKeyParam] = hex.EncodeToString(hash)
	}
	return params
}

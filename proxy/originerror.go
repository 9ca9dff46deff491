package proxy

import (
	"errors"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// A session that cannot start on the pool side tells its client why, with the origin's own
// meaning: when the origin refused Slipstream's login (the origin URL's password), the client
// must not think its own password was wrong, so the message says whose login failed. The
// origin's detail (link.OriginError) carries no secret.

const (
	originLoginMessage = "the origin database refused Slipstream's login, not yours: "
	originLoginHint    = "Fix the user or password of this database's origin URL in Slipstream's configuration."
	originNoDBMessage  = "the origin server has no database of the name in Slipstream's origin URL: "
	originNoDBHint     = "Fix the database name at the end of this database's origin URL in Slipstream's configuration."
	originDownMessage  = "the origin database is not reachable"
	originDownHint     = "Slipstream tries it again for the next session."
)

// pgOriginError is what a PostgreSQL client is told when its session could not start because
// of err, from Transport.Profile or Open.
func pgOriginError(err error) *pgwire.Error {
	var oe *link.OriginError
	if !errors.As(err, &oe) {
		return pgwire.Fatal(pgwire.CannotConnectNow, originDownMessage)
	}
	switch oe.Refusal {
	case link.OriginLoginRefused:
		return &pgwire.Error{Severity: pgwire.SeverityFatal, Code: pgwire.InvalidPassword, Message: originLoginMessage + oe.Detail, Hint: originLoginHint}
	case link.OriginNoDatabase:
		return &pgwire.Error{Severity: pgwire.SeverityFatal, Code: pgwire.InvalidCatalogName, Message: originNoDBMessage + oe.Detail, Hint: originNoDBHint}
	}
	msg := originDownMessage + ": " + oe.Detail
	if oe.Code != "" {
		msg += " (origin's " + oe.Code + ")" // such as a MySQL origin's
	}
	return &pgwire.Error{Severity: pgwire.SeverityFatal, Code: pgwire.CannotConnectNow, Message: msg, Hint: originDownHint}
}

// mysqlOriginError is pgOriginError for a MySQL client: errors 1045, 1049 and 1105.
func mysqlOriginError(err error) *mysqlwire.Error {
	var oe *link.OriginError
	if !errors.As(err, &oe) {
		return mysqlwire.NewError(mysqlwire.ErUnknown, originDownMessage)
	}
	// The origin's own code goes with its message: a PostgreSQL origin's SQLSTATE, or MariaDB's
	// 1044 behind a 1049.
	detail := oe.Detail
	if oe.Code != "" {
		detail += " (origin's " + oe.Code + ")"
	}
	switch oe.Refusal {
	case link.OriginLoginRefused:
		return mysqlwire.NewError(mysqlwire.ErAccessDenied, originLoginMessage+detail+". "+originLoginHint)
	case link.OriginNoDatabase:
		return mysqlwire.NewError(mysqlwire.ErBadDB, originNoDBMessage+detail+". "+originNoDBHint)
	}
	return mysqlwire.NewError(mysqlwire.ErUnknown, originDownMessage+": "+detail+". "+originDownHint)
}

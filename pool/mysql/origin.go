package mysqlpool

import (
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
)

// classifyConnect turns a failed connection to a MySQL origin into a link.OriginError by the
// origin's error number, so that the edge tells clients what the origin meant.
func classifyConnect(err error) *link.OriginError {
	var me *mysql.MyError
	if errors.As(err, &me) {
		code := fmt.Sprintf("error %d", me.Code)
		switch me.Code {
		case mysql.ER_ACCESS_DENIED_ERROR, mysql.ER_ACCESS_DENIED_NO_PASSWORD_ERROR: // 1045, 1698
			return link.NewOriginError(link.OriginLoginRefused, me.Message, code, err)
		case mysql.ER_BAD_DB_ERROR, mysql.ER_DBACCESS_DENIED_ERROR: // 1049; 1044, which MariaDB answers for a database the user may not see
			return link.NewOriginError(link.OriginNoDatabase, me.Message, code, err)
		}
		return link.NewOriginError(link.OriginUnreachable, me.Message, code, err)
	}
	if detail, ok := pool.NetworkDetail(err); ok {
		return link.NewOriginError(link.OriginUnreachable, detail, "", err)
	}
	return link.NewOriginError(link.OriginUnreachable, safeError(err), "", err)
}

// originDownError is what a session's command gets when no origin connection could be made
// for it: errOriginDown, with the origin's meaning when it refused (1045, 1049).
func originDownError(err error) *sqlError {
	var oe *link.OriginError
	if !errors.As(err, &oe) {
		return errOriginDown
	}
	e := *errOriginDown
	e.Message += ": " + oe.Error()
	switch oe.Refusal {
	case link.OriginLoginRefused:
		e.Code, e.State = mysql.ER_ACCESS_DENIED_ERROR, "28000"
	case link.OriginNoDatabase:
		e.Code, e.State = mysql.ER_BAD_DB_ERROR, "42000"
	}
	return &e
}

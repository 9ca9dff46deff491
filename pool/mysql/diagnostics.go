package mysqlpool

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// showsDiagnostics says whether query is SHOW WARNINGS, SHOW ERRORS or SHOW COUNT(*) of
// either: statements that answer about the connection's last statement.
func showsDiagnostics(query []byte) bool {
	q := bytes.TrimLeft(query, " \t\r\n")
	if len(q) < 5 || !bytes.EqualFold(q[:4], []byte("show")) {
		return false
	}
	return containsFold(q, "WARNINGS") || containsFold(q, "ERRORS")
}

// clearDiagnostics empties the connection's diagnostics area with a statement that raises
// none (one that reads a table: MariaDB keeps the last statement's warnings across statements
// that use none, such as DO 0), so that SHOW WARNINGS from a session that just took the connection answers about
// nothing, as on a fresh direct connection, rather than about another session's statement.
func (c *originConn) clearDiagnostics(buf []byte) (originErr, error) {
	if err := c.write(appendCommand(nil, mysql.COM_QUERY, []byte("DO (SELECT 0 FROM information_schema.ENGINES LIMIT 0)"))); err != nil {
		return nil, originLost(err)
	}
	var p parser
	pl, err := c.readResponse(&p, rQuery, buf)
	if err != nil {
		return nil, originLost(err)
	}
	if p.failed {
		return append(originErr(nil), pl...), nil
	}
	return nil, nil
}

// raiseDiagnostics leaves e, an error the pool answered a session with in MariaDB's place, in
// the connection's diagnostics area, where MariaDB would have left it: SIGNAL raises it with its
// code, SQLSTATE and message, and its ERR is read and dropped.
func (c *originConn) raiseDiagnostics(buf []byte, e *sqlError) error {
	q := "SIGNAL SQLSTATE '" + e.State + "' SET MYSQL_ERRNO = " + strconv.Itoa(int(e.Code)) +
		", MESSAGE_TEXT = '" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(e.Message) + "'"
	if err := c.write(appendCommand(nil, mysql.COM_QUERY, []byte(q))); err != nil {
		return originLost(err)
	}
	var p parser
	if _, err := c.readResponse(&p, rQuery, buf); err != nil {
		return originLost(err)
	}
	return nil
}

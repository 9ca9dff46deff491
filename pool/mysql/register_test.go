package mysqlpool

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// A session that moved here from another pool side (failover) is told its client's statements
// under their ids (mysqlwire.ComRegisterStmt, in Skip): executing one prepares it on the
// origin, with the parameter types the old side last saw, and ids handed out later come after.
func TestARegisteredStatementIsExecutedUnderItsID(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a := open(t, p, clientCaps)
	types := []byte{mysql.MYSQL_TYPE_VAR_STRING, 0}
	a.s.Skip(mysqlwire.AppendStmtRegistration(nil, 41, 1, types, "", "SELECT CONCAT('got ', ?)"))
	// new-params-bound 0: the types are the registered ones.
	pk := a.mustRT(executePacket(41, 0, false, "it"))
	if pk[0][0] == hdrERR {
		t.Fatalf("execute of a registered statement: %s", errText(pk[0]))
	}
	if row := pk[len(pk)-2]; !bytes.HasSuffix(row, []byte("got it")) {
		t.Errorf("row %q, want got it", row)
	}
	if id := a.prepare("SELECT 1"); id != 42 {
		t.Errorf("the next statement prepared has id %d, want 42", id)
	}
	// A malformed registration is ignored.
	a.s.Skip(cmdPacket(mysqlwire.ComRegisterStmt, []byte{1, 2}))
	if pk := a.mustRT(executePacket(41, 0, true, "x")); pk[0][0] == hdrERR {
		t.Errorf("after a malformed registration: %s", errText(pk[0]))
	}
}

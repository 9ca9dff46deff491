package mysqlpool

import (
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestShowWarningsListsTheErrorsThePoolAnsweredItself: an error the pool answers in MariaDB's
// place (an unknown statement id, an unknown command) is in SHOW WARNINGS after it, as
// MariaDB's own would be (found by FuzzMySQLAnswersAsMariaDB: execute s0, SHOW WARNINGS).
func TestShowWarningsListsTheErrorsThePoolAnsweredItself(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps)
	tests := []struct {
		name string
		cmd  []byte
		want string
	}{
		{"an execute of an unknown statement", cmdPacket(mysql.COM_STMT_EXECUTE, []byte{7, 0, 0, 0, 0, 1, 0, 0, 0}),
			"[[Error 1243 Unknown prepared statement handler (7) given to mysqld_stmt_execute]]"},
		{"a fetch", cmdPacket(mysql.COM_STMT_FETCH, []byte{9, 0, 0, 0, 1, 0, 0, 0}),
			"[[Error 1243 Unknown prepared statement handler (9) given to mysqld_stmt_fetch]]"},
		{"an unknown command", cmdPacket(0x7f, nil), "[[Error 1047 Unknown command]]"},
	}
	for _, tt := range tests {
		if pk := c.mustRT(tt.cmd); len(pk) == 0 || pk[0][0] != hdrERR {
			t.Fatalf("%s: %q, want an error", tt.name, pk)
		}
		if got := fmt.Sprint(c.rows("SHOW WARNINGS")); got != tt.want {
			t.Errorf("%s: SHOW WARNINGS = %s, want %s", tt.name, got, tt.want)
		}
		// A statement that uses no table leaves them in place, as in MariaDB.
		c.rows("SELECT @fz")
		if got := fmt.Sprint(c.rows("SHOW WARNINGS")); got != tt.want {
			t.Errorf("%s: after SELECT @fz, SHOW WARNINGS = %s, want %s", tt.name, got, tt.want)
		}
	}
}

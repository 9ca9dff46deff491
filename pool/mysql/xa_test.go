package mysqlpool

import (
	"errors"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestXATransactionKeepsItsConnection(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	a := open(t, p, clientCaps)
	a.exec("CREATE TABLE IF NOT EXISTS t_xa (i int)")
	a.exec("XA START 'x1'")
	id := a.value("SELECT CONNECTION_ID()")
	a.exec("INSERT INTO t_xa VALUES (1)")
	if a.s.leased() == nil {
		t.Fatal("the session let go of its connection inside an XA transaction")
	}
	if got := a.value("SELECT CONNECTION_ID()"); got != id {
		t.Errorf("inside an XA transaction the session moved from %s to %s", id, got)
	}
	a.exec("XA END 'x1'")
	a.exec("XA PREPARE 'x1'")
	a.exec("XA COMMIT 'x1'")
}

func TestWarningsAndFoundRowsAreAskedOnTheSameConnection(t *testing.T) {
	defer func(d time.Duration) { holdFor = d }(holdFor)
	holdFor = time.Minute // however slow this machine is
	p := newPool(t, Config{MaxConns: 2})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	a.exec("SELECT 1/0")
	b.value("SELECT 1") // would clear a's warnings if it ran on a's connection
	if got := a.rows("SHOW WARNINGS"); len(got) != 1 || got[0][1] != "1365" {
		t.Errorf("SHOW WARNINGS = %q, want the division by zero", got)
	}
	a.exec("SELECT SQL_CALC_FOUND_ROWS seq FROM seq_1_to_10 LIMIT 2")
	b.exec("SELECT SQL_CALC_FOUND_ROWS seq FROM seq_1_to_100 LIMIT 1")
	if got := a.value("SELECT FOUND_ROWS()"); got != "10" {
		t.Errorf("FOUND_ROWS() = %s, want 10", got)
	}
	// and the connection goes back after
	if a.s.leased() != nil {
		t.Errorf("a still holds a connection")
	}
}

func TestAHeldConnectionGoesBackWhenNoQuestionComes(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 5 * time.Second})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	a.exec("SELECT 1/0")
	if a.s.leased() == nil {
		t.Fatal("no connection kept after a warning")
	}
	// b waits in line until the hold ends.
	if got := b.value("SELECT 2"); got != "2" {
		t.Errorf("b got %q", got)
	}
}

func TestTransactionCharacteristicsFollowTheSession(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 300 * time.Millisecond})
	a, b := open(t, p, clientCaps), open(t, p, clientCaps)
	a.exec("CREATE TABLE IF NOT EXISTS t_iso (i int)")
	a.exec("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
	b.exec("SET @b = 1") // b's state resets the one connection
	b.value("SELECT @b")
	if got := a.value("SELECT @@tx_isolation"); got != "READ-COMMITTED" {
		t.Errorf("a's isolation level after b used the connection: %s", got)
	}
	if got := b.value("SELECT @@tx_isolation"); got != "REPEATABLE-READ" {
		t.Errorf("b sees a's isolation level: %s", got)
	}

	// SET TRANSACTION shapes the next transaction only, which must run where it was said.
	a.exec("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
	if _, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); !errors.Is(err, link.ErrQueueTimeout) {
		t.Fatalf("b got %v while a's next transaction is pending, want ErrQueueTimeout", err)
	}
	a.exec("START TRANSACTION")
	a.exec("SELECT COUNT(*) FROM t_iso")
	if got := a.value("SELECT trx_isolation_level FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = CONNECTION_ID()"); got != "SERIALIZABLE" {
		t.Errorf("a's transaction runs at %s, want SERIALIZABLE", got)
	}
	a.exec("COMMIT")
	if got := b.value("SELECT 2"); got != "2" {
		t.Errorf("b after a's transaction: %q", got)
	}
}

func TestAStatementThePoolCannotDescribeDoesNotResetTheSessionsOwnTransaction(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a := open(t, p, clientCaps)
	a.exec("CREATE TABLE IF NOT EXISTS t_dirty (i int)")
	a.exec("DELETE FROM t_dirty")
	a.exec("DROP PROCEDURE IF EXISTS noop")
	a.exec("CREATE PROCEDURE noop() BEGIN END")
	a.exec("BEGIN")
	a.exec("INSERT INTO t_dirty VALUES (1)")
	a.exec("CALL noop()") // leaves the connection dirty: reset before anyone else uses it
	a.exec("INSERT INTO t_dirty VALUES (2)")
	a.exec("COMMIT")
	if got := a.value("SELECT COUNT(*) FROM t_dirty"); got != "2" {
		t.Errorf("after COMMIT the table holds %s rows, want 2", got)
	}
}

package mysqlpool

import "testing"

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

package mysqlpool

import "testing"

// TestReadsGoToTheReplicaPoolUntilItIsTakenAway: a pool given a replica pool (here a second
// pool to the same MariaDB: its connections have ids of their own) sends the reads the edge
// routes there, and writes and unrouted reads to the primary; a read of a session that wrote
// goes to the primary for ReadYourWrites; once ClearReplica has taken the replica pool away, as
// a reload does, and closed it, every read is the primary's; a routed read that meets a closed
// replica pool goes to the primary instead of failing.
func TestReadsGoToTheReplicaPoolUntilItIsTakenAway(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	rp := newPool(t, Config{MaxConns: 1})
	m := NewReplicaMetrics(nil)
	c := open(t, p, clientCaps)
	primary := c.value("SELECT CONNECTION_ID()")

	p.SetReplica(Replica{Pool: rp, ReadYourWrites: 1 << 62, Metrics: m})
	read := func(routed bool) string {
		t.Helper()
		c.s.Route(routed, false)
		return c.value("SELECT CONNECTION_ID()")
	}
	replica := read(true)
	if replica == primary {
		t.Fatalf("a routed read ran on the primary's connection %s", primary)
	}
	if got := read(false); got != primary {
		t.Errorf("a read not routed ran on %s, want the primary's %s", got, primary)
	}
	if got := read(true); got != replica {
		t.Errorf("the second routed read ran on %s, want the replica's %s", got, replica)
	}
	c.s.Route(false, true)
	c.exec("DO 1")
	if got := read(true); got != primary {
		t.Errorf("a routed read right after a write ran on %s, want the primary's %s (read_your_writes)", got, primary)
	}

	// Taken away and closed, as a reload turning replica_reads off does.
	c2 := open(t, p, clientCaps)
	c2.s.Route(true, false)
	if got := c2.value("SELECT CONNECTION_ID()"); got != replica {
		t.Fatalf("another session's routed read ran on %s, want the replica's %s", got, replica)
	}
	p.ClearReplica(rp)
	rp.Close()
	c2.s.Route(true, false)
	if got := c2.value("SELECT CONNECTION_ID()"); got != primary {
		t.Errorf("after ClearReplica a routed read ran on %s, want the primary's %s", got, primary)
	}

	// A replica pool closed while a read was routed to it: the read goes to the primary.
	closed := newPool(t, Config{MaxConns: 1})
	closed.Close()
	p.SetReplica(Replica{Pool: closed, Metrics: m})
	c2.s.Route(true, false)
	if got := c2.value("SELECT CONNECTION_ID()"); got != primary {
		t.Errorf("a read routed to a closed replica pool ran on %s, want the primary's %s", got, primary)
	}
	// ClearReplica of a pool that is not p's replica changes nothing.
	p.ClearReplica(rp)
	if p.replica.Load() == nil {
		t.Error("ClearReplica of another pool took p's replica away")
	}
}

package proxy

import (
	"context"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

func TestParseKill(t *testing.T) {
	for _, tc := range []struct {
		q     string
		id    uint32
		query bool
		ok    bool
	}{
		{"KILL 42", 42, false, true},
		{"  kill query 7;", 7, true, true},
		{"KILL CONNECTION 9", 9, false, true},
		{"KILL HARD QUERY 3", 3, true, true},
		{"kill soft 3 ;", 3, false, true},
		{"KILL QUERY ID 5", 0, false, false}, // a query id: the origin's business
		{"KILL USER app", 0, false, false},
		{"KILL 99999999999", 0, false, false},
		{"KILLING 1", 0, false, false},
		{"SELECT 'KILL 1'", 0, false, false},
	} {
		id, query, ok := parseKill([]byte(tc.q))
		if id != tc.id || query != tc.query || ok != tc.ok {
			t.Errorf("parseKill(%q) = %d, %v, %v; want %d, %v, %v", tc.q, id, query, ok, tc.id, tc.query, tc.ok)
		}
	}
}

func TestParseKillAllocatesNothingForOtherQueries(t *testing.T) {
	q := []byte("SELECT c FROM sbtest1 WHERE id = 42")
	if n := testing.AllocsPerRun(100, func() { parseKill(q) }); n != 0 {
		t.Fatalf("%v allocations per query", n)
	}
}

// discardConn is a client that reads nothing and takes every write.
type discardConn struct{ scriptConn }

func (c *discardConn) Write(p []byte) (int, error) { return len(p), nil }

func TestMySQLCommandLoopAllocatesNothing(t *testing.T) {
	s := New(Config{})
	nc := &discardConn{}
	sess := &mysqlSession{s: s, log: s.log, nc: nc, stream: &okStream{}}
	raw := mysqlwire.AppendPacket(nil, 0, append([]byte{mysql.COM_QUERY}, "SELECT c FROM sbtest1 WHERE id = 42"...))
	buf := make([]byte, 0, 1024)
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { buf, _ = sess.command(ctx, raw, buf) }); n != 0 {
		t.Fatalf("%v allocations per command", n)
	}
}

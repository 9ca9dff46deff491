package pool

import (
	"context"
	"testing"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// TestAParseOfTheUnnamedStatementSkippedAfterTheCloseThePoolAddedLeavesNone: another session's
// unnamed statement is on the connection; the pool closes it before a Bind of the session's
// (which has none), then the session parses one, and the origin skips all three after an error
// (found by FuzzPipelines: a Describe of it then described the other session's).
func TestAParseOfTheUnnamedStatementSkippedAfterTheCloseThePoolAddedLeavesNone(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	b := p.NewSession(context.Background(), map[string]string{})
	playSteps(t, []unitStep{{"b", b, unit(parseMsg("", "SELECT $1::int + 1"), syncMsg), "1 Z"}})
	b.Close()
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	exchange(t, s, query("CREATE TEMP TABLE t (id int, v text)"))
	bindx := pgwire.AppendFrame(nil, 'B', []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'x', 0, 0})
	closeP1 := pgwire.AppendFrame(nil, 'C', []byte{'P', 'p', '1', 0})
	playSteps(t, []unitStep{
		{"u1", s, unit(parseMsg("s2", "SELECT generate_series(1, 3) AS n"), parseMsg("s2", "DEALLOCATE q"), bindMsg("p1", ""),
			parseMsg("", "INSERT INTO t VALUES ($1::int, 'x')"), parseMsg("s1", "SELECT $1::int + 1"), parseMsg("s2", "DEALLOCATE q"),
			parseMsg("s2", "BEGIN"), parseMsg("s1", "ALTER TABLE t ADD COLUMN c1 int"), bindx, executeMsg,
			parseMsg("", "SELECT $1::int + 1"), parseMsg("", "SELECT $1::int + 1"), closeP1, syncMsg), "1 E(42P05) Z"},
		{"u2", s, unit(pgwire.AppendFrame(nil, 'D', []byte{'S', 0}), syncMsg), "E(26000) Z"},
	})
}

package pool

import (
	"context"
	"testing"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// parseMsg is a Parse of statement name with text sql and no parameter types.
func parseMsg(name, sql string) []byte {
	return pgwire.AppendFrame(nil, 'P', append(append(append([]byte(name), 0), sql...), 0, 0, 0))
}

// bindMsg binds statement name to portal, without parameters or result formats.
func bindMsg(portal, name string) []byte {
	return pgwire.AppendFrame(nil, 'B', append(append(append(append([]byte(portal), 0), name...), 0), 0, 0, 0, 0, 0, 0))
}

var (
	syncMsg    = pgwire.AppendFrame(nil, 'S', nil)
	executeMsg = pgwire.AppendFrame(nil, 'E', []byte{0, 0, 0, 0, 0}) // the unnamed portal, all rows
)

// unit joins messages into one batch.
func unit(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, m...)
	}
	return b
}

// unitStep is one batch a session sends, and the answer it must get (as answer sums it up).
type unitStep struct {
	name   string
	s      *Session
	frames []byte
	want   string
}

// playSteps sends each step's batch on its session and compares the answers.
func playSteps(t *testing.T, steps []unitStep) {
	t.Helper()
	for _, st := range steps {
		got, err := exchange(t, st.s, st.frames)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if a := answer(got); a != st.want {
			t.Errorf("%s: got %s, want %s", st.name, a, st.want)
		}
	}
}

func TestAStatementThePoolParsedItselfOutlivesALaterErrorInItsPipeline(t *testing.T) {
	p := newPool(t, Config{MaxConns: 3}) // s and r are pinned (SQL EXECUTE, DEALLOCATE)
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	playSteps(t, []unitStep{
		{"s0 prepares the text on the connection", s, unit(parseMsg("s0", "SELECT 1"), syncMsg), "1 Z"},
		{"s1 of the same text, answered by the pool, then an error", s, unit(parseMsg("s1", "SELECT 1"),
			bindMsg("p1", "nope"), executeMsg, parseMsg("s1", "SELECT * FROM generate_series(1, 2)"), syncMsg), "1 E(26000) Z"},
		{"s1 still exists, as in PostgreSQL", s, unit(parseMsg("", "SELECT 1"), parseMsg("s1", "SELECT 1"), syncMsg), "1 E(42P05) Z"},
		{"and runs", s, unit(bindMsg("", "s1"), executeMsg, syncMsg), "2 D(1) C Z"},
		// SQL EXECUTE switches the session to raw names, preparing s1 on the connection
		// under its own name: after the error, the origin skips that prepare too (found by
		// FuzzPipelines: the next Parse s1 succeeded).
		{"a pipeline that turns to raw names fails", s, unit(parseMsg("s1", "SELECT 1"), parseMsg("s1", "EXECUTE q"), syncMsg), "E(42P05) Z"},
		{"s1 is still taken", s, unit(parseMsg("s1", "SELECT 1"), syncMsg), "E(42P05) Z"},
		{"and still runs", s, unit(bindMsg("", "s1"), executeMsg, syncMsg), "2 D(1) C Z"},
	})
	// A statement parsed after the error is skipped, and forgotten, even when SQL DEALLOCATE
	// later in the pipeline turns the session to raw names (found by FuzzPipelines).
	r := p.NewSession(context.Background(), map[string]string{})
	defer r.Close()
	playSteps(t, []unitStep{
		{"s2 taken, then s1 and DEALLOCATE skipped", r, unit(parseMsg("s2", "SELECT 1"), parseMsg("s2", "SELECT 2"),
			parseMsg("s1", "SELECT 3"), parseMsg("s3", "DEALLOCATE q"), syncMsg), "1 E(42P05) Z"},
		{"s1 does not exist", r, unit(bindMsg("", "s1"), executeMsg, syncMsg), "E(26000) Z"},
		{"s2 does", r, unit(bindMsg("", "s2"), executeMsg, syncMsg), "2 D(1) C Z"},
	})
	// A Close the origin skips after an error leaves the statement, also when SQL later in the
	// pipeline turns the session to raw names (found by FuzzPipelines).
	q := p.NewSession(context.Background(), map[string]string{})
	defer q.Close()
	playSteps(t, []unitStep{
		{"q parses s2", q, unit(parseMsg("s2", "SELECT 1"), syncMsg), "1 Z"},
		{"a Close of s2 skipped", q, unit(parseMsg("s2", "SELECT 9"), pgwire.AppendFrame(nil, 'C', []byte("Ss2\x00")),
			parseMsg("s2", "DEALLOCATE q"), syncMsg), "E(42P05) Z"},
		{"s2 is still taken", q, unit(parseMsg("s2", "SELECT 9"), syncMsg), "E(42P05) Z"},
		{"and runs", q, unit(bindMsg("", "s2"), executeMsg, syncMsg), "2 D(1) C Z"},
	})
}

func TestABindOfTheUnnamedStatementNeverFindsAnotherSessions(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a := p.NewSession(context.Background(), map[string]string{})
	defer a.Close()
	b := p.NewSession(context.Background(), map[string]string{})
	defer b.Close()
	playSteps(t, []unitStep{
		{"a parses the unnamed statement", a, unit(parseMsg("", "SELECT 1"), syncMsg), "1 Z"},
		{"b never parsed one", b, unit(bindMsg("", ""), executeMsg, syncMsg), "E(26000) Z"},
		{"a's is gone with b's unit", a, unit(bindMsg("", ""), executeMsg, syncMsg), "2 D(1) C Z"},
		{"a failed Parse of the unnamed statement leaves none", a, unit(parseMsg("", "SELEC 1"), syncMsg), "E(42601) Z"},
		{"so a Bind of it fails", a, unit(bindMsg("", ""), executeMsg, syncMsg), "E(26000) Z"},
		{"a parses it again", a, unit(parseMsg("", "SELECT 2"), syncMsg), "1 Z"},
		{"a simple Query drops it", a, query("SELECT 3"), "T D(3) C Z"},
		{"as in PostgreSQL", a, unit(bindMsg("", ""), executeMsg, syncMsg), "E(26000) Z"},
		// A Parse of it that the origin skips after an error leaves what was there: nothing
		// here (found by FuzzPipelines: a Describe of it described another's)...
		{"b binds the connection's unnamed statement", b, unit(parseMsg("", "SELECT $1::int + 1"), syncMsg), "1 Z"},
		{"a's Parse of it is skipped", a, unit(bindMsg("", "nosuch"), parseMsg("", "SELECT 4"), syncMsg), "E(26000) Z"},
		{"so a has none", a, unit(pgwire.AppendFrame(nil, 'D', []byte{'S', 0}), syncMsg), "E(26000) Z"},
		// ...and the statement before it, when there was one.
		{"a parses one", a, unit(parseMsg("", "SELECT 5"), syncMsg), "1 Z"},
		{"a's next Parse of it is skipped", a, unit(bindMsg("", "nosuch"), parseMsg("", "SELECT 6"), syncMsg), "E(26000) Z"},
		{"a still has the one before", a, unit(bindMsg("", ""), executeMsg, syncMsg), "2 D(5) C Z"},
	})
}

// TestASimpleQueryTheEdgeAnsweredDropsTheUnnamedStatement: the edge answers a simple Query from
// its cache and tells the pool (Skip); PostgreSQL would have dropped the unnamed statement.
func TestASimpleQueryTheEdgeAnsweredDropsTheUnnamedStatement(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	playSteps(t, []unitStep{{"Parse", s, unit(parseMsg("", "SELECT 1"), syncMsg), "1 Z"}})
	s.Skip(query("SELECT 2"))
	playSteps(t, []unitStep{{"a Bind of the unnamed statement after the Query", s, unit(bindMsg("", ""), executeMsg, syncMsg), "E(26000) Z"}})
}

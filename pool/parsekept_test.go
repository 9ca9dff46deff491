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

func TestAStatementThePoolParsedItselfOutlivesALaterErrorInItsPipeline(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	sync := pgwire.AppendFrame(nil, 'S', nil)
	execute := pgwire.AppendFrame(nil, 'E', []byte{0, 0, 0, 0, 0})
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	steps := []struct {
		name   string
		frames []byte
		want   string
	}{
		{"s0 prepares the text on the connection", cat(parseMsg("s0", "SELECT 1"), sync), "1 Z"},
		{"s1 of the same text, answered by the pool, then an error", cat(parseMsg("s1", "SELECT 1"), bindMsg("p1", "nope"), execute,
			parseMsg("s1", "SELECT * FROM generate_series(1, 2)"), sync), "1 E(26000) Z"},
		{"s1 still exists, as in PostgreSQL", cat(parseMsg("", "SELECT 1"), parseMsg("s1", "SELECT 1"), sync), "1 E(42P05) Z"},
		{"and runs", cat(bindMsg("", "s1"), execute, sync), "2 D(1) C Z"},
		// SQL EXECUTE switches the session to raw names, preparing s1 on the connection
		// under its own name: after the error, the origin skips that prepare too (found by
		// FuzzPipelines: the next Parse s1 succeeded).
		{"a pipeline that turns to raw names fails", cat(parseMsg("s1", "SELECT 1"), parseMsg("s1", "EXECUTE q"), sync), "E(42P05) Z"},
		{"s1 is still taken", cat(parseMsg("s1", "SELECT 1"), sync), "E(42P05) Z"},
		{"and still runs", cat(bindMsg("", "s1"), execute, sync), "2 D(1) C Z"},
	}
	for _, st := range steps {
		got, err := exchange(t, s, st.frames)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if a := answer(got); a != st.want {
			t.Errorf("%s: got %s, want %s", st.name, a, st.want)
		}
	}
}

func TestABindOfTheUnnamedStatementNeverFindsAnotherSessions(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	a := p.NewSession(context.Background(), map[string]string{})
	defer a.Close()
	b := p.NewSession(context.Background(), map[string]string{})
	defer b.Close()
	sync := pgwire.AppendFrame(nil, 'S', nil)
	execute := pgwire.AppendFrame(nil, 'E', []byte{0, 0, 0, 0, 0})
	query := pgwire.AppendFrame(nil, 'Q', []byte("SELECT 3\x00"))
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	steps := []struct {
		name   string
		s      *Session
		frames []byte
		want   string
	}{
		{"a parses the unnamed statement", a, cat(parseMsg("", "SELECT 1"), sync), "1 Z"},
		{"b never parsed one", b, cat(bindMsg("", ""), execute, sync), "E(26000) Z"},
		{"a's is gone with b's unit", a, cat(bindMsg("", ""), execute, sync), "2 D(1) C Z"},
		{"a failed Parse of the unnamed statement leaves none", a, cat(parseMsg("", "SELEC 1"), sync), "E(42601) Z"},
		{"so a Bind of it fails", a, cat(bindMsg("", ""), execute, sync), "E(26000) Z"},
		{"a parses it again", a, cat(parseMsg("", "SELECT 2"), sync), "1 Z"},
		{"a simple Query drops it", a, query, "T D(3) C Z"},
		{"as in PostgreSQL", a, cat(bindMsg("", ""), execute, sync), "E(26000) Z"},
	}
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

// TestASimpleQueryTheEdgeAnsweredDropsTheUnnamedStatement: the edge answers a simple Query from
// its cache and tells the pool (Skip); PostgreSQL would have dropped the unnamed statement.
func TestASimpleQueryTheEdgeAnsweredDropsTheUnnamedStatement(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	sync := pgwire.AppendFrame(nil, 'S', nil)
	if got, err := exchange(t, s, append(parseMsg("", "SELECT 1"), sync...)); err != nil || answer(got) != "1 Z" {
		t.Fatalf("Parse: %s, %v", answer(got), err)
	}
	s.Skip(query("SELECT 2"))
	frames := append(append(bindMsg("", ""), pgwire.AppendFrame(nil, 'E', []byte{0, 0, 0, 0, 0})...), sync...)
	if got, err := exchange(t, s, frames); err != nil || answer(got) != "E(26000) Z" {
		t.Errorf("Bind of the unnamed statement after the Query: %s, %v; want E(26000) Z", answer(got), err)
	}
}

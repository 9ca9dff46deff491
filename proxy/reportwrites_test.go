package proxy

import (
	"fmt"
	"testing"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// reportingStream records what the session reports to the pool end.
type reportingStream struct {
	link.Stream
	reports []string
}

func (s *reportingStream) Caps() link.Caps { return link.Caps{Writes: s} }

func (s *reportingStream) ReportWrites(tables []string, all bool) {
	s.reports = append(s.reports, fmt.Sprintf("%q all=%v", tables, all))
}

func TestWritesAreReportedWithTheBatchThatMayMakeThemVisible(t *testing.T) {
	c, err := cache.New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := &reportingStream{}
	sess := &session{s: &Server{cfg: Config{Cache: c}}, db: "app", stream: stream, cache: newCacheState("app", nil), state: sessionstate.NewPG()}
	for _, step := range []struct {
		query  string
		status byte // the ReadyForQuery that answers it
		want   string
	}{
		{"UPDATE users SET v = 1", 'I', `["users"] all=false`},
		{"SELECT v FROM users", 'I', ""},
		{"BEGIN", 'T', ""},
		{"UPDATE users SET v = 2", 'T', ""}, // inside the block: nothing visible yet
		{"UPDATE orders SET v = 2", 'T', ""},
		{"SELECT 1", 'T', ""},
		{"COMMIT", 'I', `["users" "orders"] all=false`},
		{"BEGIN", 'T', ""},
		{"DELETE FROM users", 'T', ""},
		{"ROLLBACK", 'I', `["users"] all=false`}, // harmless, and simpler than telling them apart
		{"SELECT 1", 'I', ""},
	} {
		stream.reports = nil
		p := sess.plan(pgwire.AppendFrame(nil, 'Q', []byte(step.query+"\x00")), false)
		sess.cache.written = append(sess.cache.written, p.writes...)
		sess.cache.writeAll = sess.cache.writeAll || p.writeAll
		sess.reportWrites(&p)
		got := ""
		if len(stream.reports) > 0 {
			got = stream.reports[0]
		}
		if got != step.want {
			t.Errorf("%s: reported %q, want %q", step.query, got, step.want)
		}
		sess.beforeAnswer(pgwire.AppendReadyForQuery(nil, step.status))
	}
}

package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// unpeekable hides the socket beneath a connection, as an origin reached through something
// that is not a socket would: Dead cannot see a close, so the unit goes out on the dead
// connection, as when the origin closes it just after the check.
type unpeekable struct{ net.Conn }

func dialUnpeekable(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return unpeekable{nc}, nil
}

func query(sql string) []byte { return pgwire.AppendFrame(nil, 'Q', append([]byte(sql), 0)) }

// extended is Parse (when sql is set), Bind, Execute and Sync of statement name.
func extended(name, sql string) []byte {
	var b []byte
	if sql != "" {
		b = pgwire.AppendFrame(b, 'P', append(append(append([]byte(name), 0), sql...), 0, 0, 0))
	}
	b = pgwire.AppendFrame(b, 'B', append(append([]byte{0}, name...), 0, 0, 0, 0, 0, 0, 0))
	b = pgwire.AppendFrame(b, 'E', []byte{0, 0, 0, 0, 0})
	return pgwire.AppendFrame(b, 'S', nil)
}

// exchange sends one unit on s and returns the whole answer.
func exchange(t *testing.T, s *Session, frames []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, frames); err != nil {
		return nil, err
	}
	var out []byte
	for s.Pending() {
		var err error
		if out, err = s.Recv(ctx, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// answer sums up an answer: its message types, each DataRow's first column and each error's
// SQLSTATE, as "T D(1) C Z" or "E(57P01)".
func answer(b []byte) string {
	var parts []string
	for len(b) > 0 {
		f, next, ok := pgwire.NextFrame(b)
		if !ok {
			break
		}
		b = next
		switch f.Type {
		case 'D':
			n := int32(binary.BigEndian.Uint32(f.Body[2:]))
			parts = append(parts, "D("+string(f.Body[6:6+max(n, 0)])+")")
		case 'E':
			parts = append(parts, "E("+string(errorField(f.Body, 'C'))+")")
		default:
			parts = append(parts, string(f.Type))
		}
	}
	return strings.Join(parts, " ")
}

// idlePIDs returns the backend pids of the pool's idle connections.
func idlePIDs(p *Pool) []uint32 {
	var pids []uint32
	p.slots.EachIdle(func(c *Conn) { pids = append(pids, c.pid) })
	return pids
}

func TestAUnitOnAConnectionTheOriginClosedWhileIdleIsSentAgainOnANewOne(t *testing.T) {
	m := NewMetrics(nil)
	p := newPool(t, Config{MaxConns: 2, Dial: dialUnpeekable, Metrics: m})
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	steps := []struct {
		name  string
		setup []byte // run first, on a live connection
		unit  []byte // run after the origin closed every idle connection
		want  string
	}{
		{"a simple query", query("select 0"), query("select 1"), "T D(1) C Z"},
		{"a statement prepared on the closed connection", extended("s1", "select 2"), extended("s1", ""), "2 D(2) C Z"},
		{"the session's settings", query("set application_name = 'resent'"), query("show application_name"), "T D(resent) C Z"},
		{"a write, which runs once", query("create table if not exists resent_w(i int); truncate resent_w"),
			query("insert into resent_w values (1)"), "C Z"},
	}
	for _, st := range steps {
		if st.setup != nil {
			if _, err := exchange(t, s, st.setup); err != nil {
				t.Fatalf("%s: setup: %v", st.name, err)
			}
		}
		terminate(t, idlePIDs(p)...)
		got, err := exchange(t, s, st.unit)
		if err != nil {
			t.Fatalf("%s: %v (answer %s)", st.name, err, answer(got))
		}
		if a := answer(got); a != st.want {
			t.Errorf("%s: answer %q, want %q", st.name, a, st.want)
		}
	}
	got, err := exchange(t, s, query("select count(*) from resent_w"))
	if err != nil || answer(got) != "T D(1) C Z" {
		t.Errorf("rows written: %q, %v; want exactly one", answer(got), err)
	}
	var resent dto.Metric
	if err := m.resent.WithLabelValues("app").Write(&resent); err != nil {
		t.Fatal(err)
	}
	if n := resent.GetCounter().GetValue(); n != float64(len(steps)) {
		t.Errorf("slipstream_origin_units_resent_total = %v, want %d", n, len(steps))
	}
}

func TestASessionInsideATransactionGetsTheOriginsFatalWhenItsConnectionEnds(t *testing.T) {
	p := newPool(t, Config{MaxConns: 2})
	s := p.NewSession(context.Background(), map[string]string{})
	defer s.Close()
	if _, err := exchange(t, s, query("begin; select 1")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	pid := s.conn.pid
	s.mu.Unlock()
	terminate(t, pid)
	got, err := exchange(t, s, query("select 2"))
	if !errors.Is(err, ErrOriginEnded) {
		t.Errorf("error %v, want ErrOriginEnded", err)
	}
	if a := answer(got); a != "E(57P01)" {
		t.Errorf("answer %q, want PostgreSQL's own FATAL 57P01 alone", a)
	}
}

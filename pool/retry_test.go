package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/slipstream-proxy/slipstream/link"
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
	if n := resentUnits(t, m); n != float64(len(steps)) {
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
	if !errors.Is(err, link.ErrOriginEnded) {
		t.Errorf("error %v, want ErrOriginEnded", err)
	}
	if a := answer(got); a != "E(57P01)" {
		t.Errorf("answer %q, want PostgreSQL's own FATAL 57P01 alone", a)
	}
}

// killedAfterFirst is an origin connection on which, once armed, the origin answers the first
// message of the next write and its backend is then terminated before it reads the rest: the
// moment pg_terminate_backend lands between a unit's settings query, which the session sends
// in front of a unit on a connection holding other settings, and the unit itself.
type killedAfterFirst struct {
	net.Conn
	mu      sync.Mutex
	armed   func() // runs between the first message's answer and the rest: terminates the backend
	answers []byte // what the origin said to the first message, for the session's reads
}

func (k *killedAfterFirst) Write(b []byte) (int, error) {
	k.mu.Lock()
	armed := k.armed
	k.armed = nil
	k.mu.Unlock()
	f, rest, ok := pgwire.NextFrame(b)
	if armed == nil || !ok {
		return k.Conn.Write(b)
	}
	if _, err := k.Conn.Write(f.Raw); err != nil {
		return 0, err
	}
	// The backend answers the first message up to its ReadyForQuery and then waits to read.
	var got []byte
	buf := make([]byte, 4096)
	for !endsWithReady(got) {
		n, err := k.Conn.Read(buf)
		if err != nil {
			return 0, err
		}
		got = append(got, buf[:n]...)
	}
	k.mu.Lock()
	k.answers = got
	k.mu.Unlock()
	armed()
	n, err := k.Conn.Write(rest)
	return len(f.Raw) + n, err
}

func (k *killedAfterFirst) Read(p []byte) (int, error) {
	k.mu.Lock()
	if len(k.answers) > 0 {
		n := copy(p, k.answers)
		k.answers = k.answers[n:]
		k.mu.Unlock()
		return n, nil
	}
	k.mu.Unlock()
	return k.Conn.Read(p)
}

// endsWithReady reports whether b is whole messages, the last a ReadyForQuery.
func endsWithReady(b []byte) bool {
	last := byte(0)
	for len(b) > 0 {
		f, next, ok := pgwire.NextFrame(b)
		if !ok {
			return false
		}
		last, b = f.Type, next
	}
	return last == 'Z'
}

// killingDialer dials origin connections that a test can arm (killedAfterFirst).
type killingDialer struct {
	mu     sync.Mutex
	conns  []*killedAfterFirst // in the order dialled
	refuse bool                // dials fail, as when the origin is down
}

func (d *killingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	refuse := d.refuse
	d.mu.Unlock()
	if refuse {
		return nil, errors.New("the origin refuses connections")
	}
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	k := &killedAfterFirst{Conn: nc}
	d.mu.Lock()
	d.conns = append(d.conns, k)
	d.mu.Unlock()
	return k, nil
}

// arm arms the i-th connection dialled: f runs once, on its next write, between the answer to
// the first message and the rest.
func (d *killingDialer) arm(i int, f func()) {
	d.mu.Lock()
	k := d.conns[i]
	d.mu.Unlock()
	k.mu.Lock()
	k.armed = f
	k.mu.Unlock()
}

// parseSync is Parse of statement name and Sync, as libpq's PQprepare sends them.
func parseSync(name, sql string) []byte {
	b := pgwire.AppendFrame(nil, 'P', append(append(append([]byte(name), 0), sql...), 0, 0, 0))
	return pgwire.AppendFrame(b, 'S', nil)
}

// terminator returns a function that terminates a backend and waits until it has gone, over
// an admin connection opened now: a hook that runs while a unit is being written must not wait
// for a new connection on a loaded machine.
func terminator(t *testing.T) func(pid uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, srv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return func(pid uint32) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var gone bool // pg_terminate_backend with a timeout waits for the backend to exit
		if err := admin.QueryRow(ctx, "select pg_terminate_backend($1, 50000)", int32(pid)).Scan(&gone); err != nil || !gone {
			t.Errorf("terminating backend %d: %v, %v", pid, gone, err)
		}
	}
}

// leasedPID returns the backend pid of the connection s holds.
func leasedPID(s *Session) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn.pid
}

// The origin can end a connection after it answered the settings query the session sent in
// front of a unit and before it read the unit (pg_terminate_backend of every backend, as the
// pgbench fault test does, under load). The unit is then sent again on another connection: the
// settings query with it only when that one needs it, and the statements it parses only when
// that one lacks them, so that every answer reaches the client once, in order. (Before, the
// settings query went out again on top of one the new connection also got, and its answer took
// the place of the unit's: the client saw ReadyForQuery early and a whole answer after it.)
func TestAUnitSentAgainAfterItsSettingsWereAnsweredIsAnsweredOnce(t *testing.T) {
	params := map[string]string{"application_name": "killed after its settings"}
	steps := []struct {
		name     string
		unit     []byte
		want     string
		next     []byte // sent after, on the same session
		wantNext string
	}{
		{name: "a simple query", unit: query("select 1"), want: "T D(1) C Z",
			next: query("select 2"), wantNext: "T D(2) C Z"},
		{name: "pgbench -M prepared's Parse and Sync", unit: parseSync("s1", "select 3"), want: "1 Z",
			next: extended("s1", ""), wantNext: "2 D(3) C Z"},
		{name: "Parse, Bind, Execute and Sync", unit: extended("s2", "select 4"), want: "1 2 D(4) C Z",
			next: extended("s2", ""), wantNext: "2 D(4) C Z"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var d killingDialer
			m := NewMetrics(nil)
			p := newPool(t, Config{MaxConns: 2, Dial: d.dial, Metrics: m})
			s := p.NewSession(context.Background(), params)
			defer s.Close()
			defer time.AfterFunc(time.Minute, func() { s.Close() }).Stop() // a hang fails, as ErrClosed
			// A fresh connection holds the origin's own settings: the unit goes after a query
			// that gives it the session's.
			c, err := p.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p.Release(c)
			kill := terminator(t)
			d.arm(0, func() { kill(leasedPID(s)) })
			got, err := exchange(t, s, st.unit)
			if err != nil {
				t.Fatalf("%v (answer %s)", err, answer(got))
			}
			if a := answer(got); a != st.want {
				t.Errorf("answer %q, want %q", a, st.want)
			}
			got, err = exchange(t, s, st.next)
			if a := answer(got); err != nil || a != st.wantNext {
				t.Errorf("the next unit: answer %q (%v), want %q", a, err, st.wantNext)
			}
			if n := resentUnits(t, m); n != 1 {
				t.Errorf("units sent again: %v, want 1", n)
			}
		})
	}
}

// A unit that parses a statement is sent again on a connection that holds that statement
// already (another session with the same settings prepared it there): the origin must not
// answer 42P05 for a name the client never saw.
func TestAUnitSentAgainOnAConnectionHoldingItsStatementParsesItThere(t *testing.T) {
	var d killingDialer
	m := NewMetrics(nil)
	p := newPool(t, Config{MaxConns: 2, Dial: d.dial, Metrics: m})
	params := map[string]string{"application_name": "killed after its settings"}
	a := p.NewSession(context.Background(), params)
	defer a.Close()
	if got, err := exchange(t, a, parseSync("s1", "select 5")); err != nil || answer(got) != "1 Z" {
		t.Fatalf("prepare on the first connection: %q, %v", answer(got), err)
	}
	ctx := context.Background()
	held, err := p.Acquire(ctx) // the first connection, holding the statement: not for b's first try
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := p.Acquire(ctx) // a second, with the origin's own settings
	if err != nil {
		t.Fatal(err)
	}
	p.Release(fresh)
	b := p.NewSession(ctx, params)
	defer b.Close()
	kill := terminator(t)
	defer time.AfterFunc(time.Minute, func() { b.Close() }).Stop() // a hang fails, as ErrClosed
	d.arm(1, func() {
		p.Release(held) // b's unit goes to it next
		kill(leasedPID(b))
	})
	got, err := exchange(t, b, extended("s1", "select 5"))
	if a := answer(got); err != nil || a != "1 2 D(5) C Z" {
		t.Errorf("answer %q (%v), want %q", a, err, "1 2 D(5) C Z")
	}
	got, err = exchange(t, b, extended("s1", ""))
	if a := answer(got); err != nil || a != "2 D(5) C Z" {
		t.Errorf("the next unit: answer %q (%v), want %q", a, err, "2 D(5) C Z")
	}
	if n := resentUnits(t, m); n != 1 {
		t.Errorf("units sent again: %v, want 1", n)
	}
}

// resentUnits reads slipstream_origin_units_resent_total of database app.
func resentUnits(t *testing.T, m *Metrics) float64 {
	t.Helper()
	var resent dto.Metric
	if err := m.resent.WithLabelValues("app").Write(&resent); err != nil {
		t.Fatal(err)
	}
	return resent.GetCounter().GetValue()
}

// When a unit cannot be sent again (no other connection can be had), the client gets the
// FATAL the origin ended the connection with, although it came before the answer to the
// settings query sent in front of the unit: not a silent close (pgbench: "perhaps the backend
// died while processing").
func TestAUnitThatCannotBeSentAgainGetsTheFatalThatEndedItsSettingsQuery(t *testing.T) {
	var d killingDialer
	p := newPool(t, Config{MaxConns: 2, Dial: d.dial})
	s := p.NewSession(context.Background(), map[string]string{"application_name": "no other connection"})
	defer s.Close()
	defer time.AfterFunc(time.Minute, func() { s.Close() }).Stop() // a hang fails, as ErrClosed
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Release(c)
	terminator(t)(c.pid) // idle: its FATAL waits unread; Dead cannot see it through the wrapper
	d.mu.Lock()
	d.refuse = true
	d.mu.Unlock()
	got, err := exchange(t, s, query("select 1"))
	if !errors.Is(err, link.ErrOriginEnded) {
		t.Errorf("error %v, want ErrOriginEnded", err)
	}
	if a := answer(got); a != "E(57P01)" {
		t.Errorf("answer %q, want PostgreSQL's own FATAL 57P01", a)
	}
}

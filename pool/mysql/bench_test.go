package mysqlpool

import (
	"context"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// roundTripBuf sends frames and receives the whole answer into buf, as the edge does.
func roundTripBuf(tb testing.TB, s *Session, frames, buf []byte) []byte {
	ctx := context.Background()
	if err := s.Send(ctx, frames); err != nil {
		tb.Fatal(err)
	}
	buf = buf[:0]
	for s.Pending() {
		var err error
		if buf, err = s.Recv(ctx, buf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf
}

func BenchmarkQuery(b *testing.B) {
	p := newPool(b, Config{MaxConns: 1})
	c := open(b, p, clientCaps|mysql.CLIENT_DEPRECATE_EOF)
	q := cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))
	buf := roundTripBuf(b, c.s, q, nil)
	b.ReportAllocs()
	for b.Loop() {
		buf = roundTripBuf(b, c.s, q, buf)
	}
}

func BenchmarkPreparedExecute(b *testing.B) {
	p := newPool(b, Config{MaxConns: 1})
	c := open(b, p, clientCaps|mysql.CLIENT_DEPRECATE_EOF)
	id := c.prepare("SELECT ?")
	q := executePacket(id, 0, true, "x")
	buf := roundTripBuf(b, c.s, q, nil)
	b.ReportAllocs()
	for b.Loop() {
		buf = roundTripBuf(b, c.s, q, buf)
	}
}

func TestHotPathAllocations(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps|mysql.CLIENT_DEPRECATE_EOF)
	id := c.prepare("SELECT ?")
	for _, tc := range []struct {
		name   string
		frames []byte
		budget float64
	}{
		{"a query", cmdPacket(mysql.COM_QUERY, []byte("SELECT 1")), 0},
		{"an execute", executePacket(id, 0, true, "x"), 0},
	} {
		buf := roundTripBuf(t, c.s, tc.frames, nil)
		if n := testing.AllocsPerRun(50, func() { buf = roundTripBuf(t, c.s, tc.frames, buf) }); n > tc.budget {
			t.Errorf("%s allocates %.0f times a round trip, budget %.0f", tc.name, n, tc.budget)
		}
	}
}

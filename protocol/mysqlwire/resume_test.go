package mysqlwire

import (
	"errors"
	"io"
	"os"
	"testing"
)

// wokenReader gives data, then fails as a read woken by a deadline does.
type wokenReader struct{ data []byte }

func (r *wokenReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestTornSaysWhetherAFailedReadTookBytesOfAPacket: a handover moves a connection only at a
// packet boundary, which a read woken before any byte of the next packet leaves it at.
func TestTornSaysWhetherAFailedReadTookBytesOfAPacket(t *testing.T) {
	ping := AppendPacket(nil, 0, []byte{0x0e})
	for _, tc := range []struct {
		name    string
		data    []byte
		packets int // read whole before the failure
		torn    bool
	}{
		{"woken between packets", ping, 1, false},
		{"woken before any byte", nil, 0, false},
		{"woken in a header", append(append([]byte(nil), ping...), 5, 0), 1, true},
		{"woken in a payload", append(append([]byte(nil), ping...), 5, 0, 0, 0, 3), 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(&wokenReader{data: tc.data}, 1<<20)
			for range tc.packets {
				if _, err := r.ReadPacket(); err != nil || r.Torn() {
					t.Fatalf("a whole packet: %v, torn %v", err, r.Torn())
				}
			}
			_, err := r.ReadPacket()
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read: %v, want the deadline", err)
			}
			if r.Torn() != tc.torn {
				t.Errorf("torn %v, want %v", r.Torn(), tc.torn)
			}
		})
	}
}

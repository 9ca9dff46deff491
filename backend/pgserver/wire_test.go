package pgserver

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReader frames arbitrary bytes as a startup packet and the messages after it: it must
// neither panic nor return a body longer than its bound, and a bad length is an 08P01 Error.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 0, 3, 0, 0, 'Q', 0, 0, 0, 5, 0})
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47, 'S', 0, 0, 0, 4})
	f.Add([]byte{0, 0, 0, 4, 0, 3, 0, 0})
	f.Add([]byte{0, 0, 0, 8, 0, 3, 0, 0, 'Q', 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 8, 0, 3, 0, 0, 'B', 0, 0, 0, 6, 'x', 0})
	const maxBody = 1 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(bytes.NewReader(data), maxBody)
		_, body, err := r.startup()
		for err == nil {
			if len(body) > maxStartup {
				t.Fatalf("a startup body of %d bytes", len(body))
			}
			_, body, err = r.next()
			if err == nil && len(body) > maxBody {
				t.Fatalf("a body of %d bytes past the bound of %d", len(body), maxBody)
			}
		}
		var e *Error
		if errors.As(err, &e) && e.Code != CodeProtocolViolation {
			t.Fatalf("a framing error with SQLSTATE %s", e.Code)
		}
	})
}

package proxy

import (
	"bytes"
	"testing"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// scanAll feeds frames to a frameScanner in chunks of n bytes and returns the messages seen.
func scanAll(frames []byte, n int) []string {
	var f frameScanner
	var got []string
	for len(frames) > 0 {
		k := min(n, len(frames))
		f.feed(frames[:k], func(typ byte, body []byte) { got = append(got, string(typ)+string(body)) })
		frames = frames[k:]
	}
	return got
}

func TestTheFrameScannerSeesTheSameMessagesHoweverTheBytesArrive(t *testing.T) {
	var frames []byte
	frames = pgwire.AppendFrame(frames, 'Q', []byte("select 1\x00"))
	frames = pgwire.AppendFrame(frames, 'P', []byte("s1\x00select $1\x00\x00\x00"))
	frames = pgwire.AppendFrame(frames, 'D', []byte("ignored"))
	frames = pgwire.AppendFrame(frames, 'S', nil)
	frames = pgwire.AppendFrame(frames, 'C', []byte("SELECT 12\x00"))
	whole := scanAll(frames, len(frames))
	if len(whole) != 4 {
		t.Fatalf("messages %q: want Q, P, S and C (D is not kept)", whole)
	}
	for _, n := range []int{1, 2, 3, 5, 7, 64} {
		if got := scanAll(frames, n); len(got) != len(whole) || !bytes.Equal([]byte(fmtMsgs(got)), []byte(fmtMsgs(whole))) {
			t.Errorf("chunks of %d: %q, want %q", n, got, whole)
		}
	}
}

func fmtMsgs(m []string) string {
	var b bytes.Buffer
	for _, s := range m {
		b.WriteString(s)
		b.WriteByte('|')
	}
	return b.String()
}

func TestCommandTagsGiveRowCounts(t *testing.T) {
	for tag, want := range map[string]int64{"SELECT 5\x00": 5, "INSERT 0 3\x00": 3, "UPDATE 10": 10, "BEGIN\x00": 0, "": 0} {
		if got := tagRows([]byte(tag)); got != want {
			t.Errorf("tagRows(%q) = %d, want %d", tag, got, want)
		}
	}
}

// FuzzFrameScanner feeds arbitrary bytes, whole and in small chunks: it never panics, keeps at
// most keepBytes of a body, and sees the same messages either way.
func FuzzFrameScanner(f *testing.F) {
	f.Add(pgwire.AppendFrame(nil, 'Q', []byte("select 1\x00")), 3)
	f.Add([]byte{'C', 0, 0, 0, 2, 'Z', 0xff, 0xff, 0xff, 0xff}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		n = max(1, n%97)
		whole := scanAll(b, len(b)+1)
		parts := scanAll(b, n)
		if fmtMsgs(whole) != fmtMsgs(parts) {
			t.Fatalf("whole %q, in chunks of %d %q", whole, n, parts)
		}
		for _, m := range whole {
			if len(m) > keepBytes+1 {
				t.Fatalf("kept %d bytes of one message", len(m))
			}
		}
	})
}

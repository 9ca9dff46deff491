package pgwire

import "testing"

func TestDrawsAnswers(t *testing.T) {
	msg := func(typ byte) []byte { return append([]byte{typ}, 0, 0, 0, 4) }
	for _, tt := range []struct {
		frames []byte
		want   bool
	}{
		{msg('P'), false},
		{append(msg('P'), msg('S')...), true},
		{msg('d'), false},
		{msg('c'), true},
		{msg('H'), true},
	} {
		if got := DrawsAnswers(tt.frames); got != tt.want {
			t.Errorf("DrawsAnswers(%q) = %v, want %v", tt.frames, got, tt.want)
		}
	}
}

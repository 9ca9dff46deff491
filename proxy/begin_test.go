package proxy

import (
	"bytes"
	"testing"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

func TestIsPlainBegin(t *testing.T) {
	for _, tt := range []struct {
		q    string
		want bool
	}{
		{"BEGIN", true},
		{"begin;", true},
		{" BEGIN WORK ", true},
		{"START TRANSACTION", true},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", true},
		{"start transaction isolation level repeatable read read write", true},
		{"BEGIN ISOLATION LEVEL READ COMMITTED", true},
		{"BEGIN ISOLATION LEVEL BOGUS", false},
		{"BEGIN; SELECT 1", false},
		{"BEGIN /* note */", false},
		{"-- x\nBEGIN", false},
		{"START", false},
		{"BEGINNING", false},
		{"COMMIT", false},
		{"", false},
	} {
		if got := isPlainBegin(tt.q); got != tt.want {
			t.Errorf("isPlainBegin(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func frame(typ byte, body string) []byte { return pgwire.AppendFrame(nil, typ, []byte(body)) }

func TestMergeableBatchesAreWholeUnits(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames []byte
		want   bool
	}{
		{"a simple query", frame('Q', "SELECT 1\x00"), true},
		{"an extended unit ending with Sync", bytes.Join([][]byte{frame('P', "\x00SELECT 1\x00\x00\x00"), frame('B', "\x00\x00\x00\x00\x00\x00\x00\x00"), frame('E', "\x00\x00\x00\x00\x00"), frame('S', "")}, nil), true},
		{"an unfinished extended unit", frame('P', "\x00SELECT 1\x00\x00\x00"), false},
		{"a Flush", bytes.Join([][]byte{frame('E', "\x00\x00\x00\x00\x00"), frame('H', "")}, nil), false},
		{"COPY data", frame('d', "1\n"), false},
	} {
		if got := mergeable(tt.frames); got != tt.want {
			t.Errorf("%s: mergeable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTheHeldBeginsAnswersAreTakenOff(t *testing.T) {
	beginOK := appendBeginAnswer(nil)
	unit := append(frame('C', "SELECT 1\x00"), pgwire.AppendReadyForQuery(nil, 'T')...)
	t.Run("split across chunks", func(t *testing.T) {
		b := beginHold{strip: true}
		// Chunks hold whole messages: the BEGIN's CommandComplete, then its ReadyForQuery with the unit's answers.
		var got []byte
		got = append(got, b.filter(append([]byte(nil), beginOK[:len(beginOK)-6]...))...)
		got = append(got, b.filter(append(append([]byte(nil), beginOK[len(beginOK)-6:]...), unit...))...)
		if !bytes.Equal(got, unit) || b.strip || b.failed() != nil {
			t.Errorf("got %q, want the unit's answers %q", got, unit)
		}
	})
	t.Run("a failed BEGIN stands in for the unit", func(t *testing.T) {
		b := beginHold{strip: true}
		e := frame('E', "SERROR\x00C25001\x00Mno\x00\x00")
		answers := append(append(append([]byte(nil), e...), pgwire.AppendReadyForQuery(nil, 'I')...),
			append(frame('C', "INSERT 0 1\x00"), pgwire.AppendReadyForQuery(nil, 'I')...)...)
		if got := b.filter(answers); len(got) != 0 {
			t.Errorf("passed %q after a failed BEGIN", got)
		}
		want := append(append([]byte(nil), e...), pgwire.AppendReadyForQuery(nil, 'I')...)
		if got := b.failed(); !bytes.Equal(got, want) {
			t.Errorf("failed() = %q, want %q", got, want)
		}
	})
}

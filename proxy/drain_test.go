package proxy

import (
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// newDrainState returns a drainState whose end reports on the channel.
func newDrainState() (*drainState, chan struct{}) {
	ended := make(chan struct{}, 4)
	return &drainState{end: func() { ended <- struct{}{} }}, ended
}

func endedNow(ended chan struct{}) bool {
	select {
	case <-ended:
		return true
	default:
		return false
	}
}

func TestDrainEndsSessionsAtTheirNextRequestBoundary(t *testing.T) {
	t.Run("a busy session is not ended; it ends itself at its next boundary", func(t *testing.T) {
		d, ended := newDrainState()
		d.boundary(true, false)
		d.busy()
		d.drain()
		if endedNow(ended) {
			t.Fatal("drain ended a session serving a request")
		}
		if d.boundary(false, false) {
			t.Fatal("a boundary inside a transaction ended the session")
		}
		if !d.boundary(true, false) {
			t.Fatal("the session's next idle boundary did not end it")
		}
	})
	t.Run("a session idle for longer than the grace is ended at once", func(t *testing.T) {
		d, ended := newDrainState()
		d.boundary(true, false)
		d.busy()
		d.boundary(true, false)
		d.idleSince = time.Now().Add(-2 * drainGrace)
		d.drain()
		if !endedNow(ended) {
			t.Fatal("drain did not end a long idle session")
		}
	})
	t.Run("a session idle for less than the grace is ended once the grace has passed", func(t *testing.T) {
		d, ended := newDrainState()
		d.boundary(true, false)
		d.busy()
		d.boundary(true, false)
		d.drain()
		if endedNow(ended) {
			t.Fatal("drain ended a session that may have a request on the way")
		}
		select {
		case <-ended:
		case <-time.After(10 * drainGrace):
			t.Fatal("the session was not ended after the grace")
		}
	})
	t.Run("a session that starts while the server drains gets the grace for its first request", func(t *testing.T) {
		d, ended := newDrainState()
		d.draining.Store(true)
		if d.boundary(true, false) {
			t.Fatal("a fresh session was ended before its first request")
		}
		d.busy() // its first request came
		if d.boundary(false, false) {
			t.Fatal("ended inside the transaction")
		}
		if !d.boundary(true, false) {
			t.Fatal("not ended at the end of its first transaction")
		}
		select {
		case <-ended:
			t.Fatal("the grace timer ended a session that was no longer idle")
		default:
		}
	})
}

func TestHandOverMovesSessionsThatCanMoveWithoutGrace(t *testing.T) {
	handing := func() (*drainState, chan struct{}, chan struct{}) {
		d, ended := newDrainState()
		woken := make(chan struct{}, 4)
		d.wake = func() { woken <- struct{}{} }
		d.handing.Store(true)
		return d, ended, woken
	}
	t.Run("an idle session that can move is woken at once, not ended", func(t *testing.T) {
		d, ended, woken := handing()
		d.boundary(true, true) // idle for less than the grace
		d.drain()
		if endedNow(ended) || !endedNow(woken) {
			t.Fatal("drain did not wake the session to move it")
		}
		if !d.busy() {
			t.Fatal("busy does not report the read that ended as woken")
		}
		if d.busy() {
			t.Fatal("busy reports woken twice")
		}
		if !d.boundary(true, true) {
			t.Fatal("back at its boundary, the woken session was not told to go")
		}
	})
	t.Run("a session that cannot move drains, with the grace", func(t *testing.T) {
		d, ended, woken := handing()
		d.boundary(true, false)
		d.drain()
		if endedNow(ended) || endedNow(woken) {
			t.Fatal("a session idle for less than the grace was ended or woken")
		}
		select {
		case <-ended:
		case <-time.After(10 * drainGrace):
			t.Fatal("the session was not ended after the grace")
		}
	})
	t.Run("a session that starts while the server hands over moves at its first boundary", func(t *testing.T) {
		d, _, _ := handing()
		d.draining.Store(true)
		if !d.boundary(true, true) {
			t.Fatal("a fresh session that can move was not moved")
		}
	})
	t.Run("a busy session moves at its next boundary outside a transaction", func(t *testing.T) {
		d, ended, woken := handing()
		d.busy()
		d.drain()
		if endedNow(ended) || endedNow(woken) {
			t.Fatal("drain touched a session serving a request")
		}
		if d.boundary(false, false) {
			t.Fatal("moved inside a transaction")
		}
		if !d.boundary(true, true) {
			t.Fatal("not moved at its next boundary")
		}
	})
}

func TestDrainEndsPinnedSessionsAtTheirBoundary(t *testing.T) {
	t.Run("a pinned session in a transaction ends when every unit is answered outside it", func(t *testing.T) {
		d, ended := newDrainState()
		d.pinned('T')
		d.sent(1)
		d.drain()
		if endedNow(ended) {
			t.Fatal("drain ended a pinned session inside its transaction")
		}
		if d.answered(1, 'T') {
			t.Fatal("ended at a ReadyForQuery inside the transaction")
		}
		if !d.sent(2) {
			t.Fatal("the reader may not send while nothing ended the session")
		}
		if d.answered(1, 'I') {
			t.Fatal("ended with a unit still unanswered")
		}
		if !d.answered(1, 'I') {
			t.Fatal("not ended once every unit was answered outside a transaction")
		}
		if d.sent(1) {
			t.Fatal("the reader may send after the drain ended the session")
		}
	})
	t.Run("a pinned session waiting for notifications drains as an idle one", func(t *testing.T) {
		d, ended := newDrainState()
		d.sent(1)
		d.answered(1, 'I')
		d.idleSince = time.Now().Add(-2 * drainGrace)
		d.drain()
		if !endedNow(ended) {
			t.Fatal("drain did not end an idle pinned session")
		}
		if d.sent(1) {
			t.Fatal("the reader may send after the drain ended the session")
		}
	})
	t.Run("a session pinned at a boundary while the server drains ends at once", func(t *testing.T) {
		d, _ := newDrainState()
		d.draining.Store(true)
		if !d.pinned('I') {
			t.Fatal("not ended")
		}
	})
}

func TestUnitsAndReadyForQueryAreCounted(t *testing.T) {
	q := pgwire.AppendFrame(nil, 'Q', []byte("select 1\x00"))
	ext := append(pgwire.AppendFrame(pgwire.AppendFrame(nil, 'B', make([]byte, 8)), 'E', make([]byte, 5)), pgwire.AppendFrame(nil, 'S', nil)...)
	if n := countUnits(append(append([]byte{}, q...), ext...)); n != 2 {
		t.Errorf("units: %d, want 2", n)
	}
	answers := append(pgwire.AppendFrame(nil, 'Z', []byte{'T'}), pgwire.AppendFrame(nil, 'Z', []byte{'I'})...)
	if n, st := readyStatuses(answers); n != 2 || st != 'I' {
		t.Errorf("ReadyForQuery: %d, %q; want 2, 'I'", n, st)
	}
}

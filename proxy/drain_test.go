package proxy

import (
	"testing"
	"time"
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
		d.boundary(true)
		d.busy()
		d.drain()
		if endedNow(ended) {
			t.Fatal("drain ended a session serving a request")
		}
		if d.boundary(false) {
			t.Fatal("a boundary inside a transaction ended the session")
		}
		if !d.boundary(true) {
			t.Fatal("the session's next idle boundary did not end it")
		}
	})
	t.Run("a session idle for longer than the grace is ended at once", func(t *testing.T) {
		d, ended := newDrainState()
		d.boundary(true)
		d.busy()
		d.boundary(true)
		d.idleSince = time.Now().Add(-2 * drainGrace)
		d.drain()
		if !endedNow(ended) {
			t.Fatal("drain did not end a long idle session")
		}
	})
	t.Run("a session idle for less than the grace is ended once the grace has passed", func(t *testing.T) {
		d, ended := newDrainState()
		d.boundary(true)
		d.busy()
		d.boundary(true)
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
		if d.boundary(true) {
			t.Fatal("a fresh session was ended before its first request")
		}
		d.busy() // its first request came
		if d.boundary(false) {
			t.Fatal("ended inside the transaction")
		}
		if !d.boundary(true) {
			t.Fatal("not ended at the end of its first transaction")
		}
		select {
		case <-ended:
			t.Fatal("the grace timer ended a session that was no longer idle")
		default:
		}
	})
}

package proxy

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// clientPacket is one logical packet from a MySQL client, or why there is none.
type clientPacket struct {
	raw []byte
	err error
	seq byte // of the last header read, for the answer to a refused packet
}

// clientReader reads a MySQL client's packets on a goroutine of its own, one packet ahead of
// the session. A client does not send while it waits for an answer, so a read that ends while
// a command is in flight means the client is gone: the reader then cancels the query and ends
// the session, and the origin connection is freed now instead of when the abandoned query
// would have finished.
//
// Buffers: two, in turns. The reader fills one while the session works on the packet in the
// other; it hands a packet over only once the session asks for the next one, by which time
// the session is done with the buffer the reader fills next. Backpressure: the reader is at
// most one packet ahead; the hand-off channel is unbuffered.
type clientReader struct {
	in   chan clientPacket
	done chan struct{} // closed when the session stops asking
	exit chan struct{} // closed when the reader has returned
}

// startReader starts sess's client reader; stopReader ends it.
func (sess *mysqlSession) startReader(ctx context.Context) *clientReader {
	cr := &clientReader{in: make(chan clientPacket), done: make(chan struct{}), exit: make(chan struct{})}
	go func() {
		defer close(cr.exit)
		var bufs [2][]byte
		for i := 0; ; i ^= 1 {
			raw, err := sess.r.ReadPacketTo(bufs[i][:0])
			if raw != nil {
				bufs[i] = raw
			}
			if err != nil && sess.busy.Load() && clientGone(err) {
				sess.abandon(ctx)
			}
			select {
			case cr.in <- clientPacket{raw: raw, err: err, seq: sess.r.LastSeq()}:
			case <-cr.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return cr
}

// next returns the client's next packet; the previous one is no longer valid.
func (cr *clientReader) next() clientPacket { return <-cr.in }

// stop ends the reader and waits for it. The session's goroutine calls it once, last.
func (sess *mysqlSession) stopReader(cr *clientReader) {
	close(cr.done)
	sess.nc.SetReadDeadline(time.Now()) // wakes a read of the client
	<-cr.exit
}

// clientGone reports whether a failed read means the client connection is gone (rather than a
// protocol error, which the session answers in turn, or the session's own wake-up).
func clientGone(err error) bool {
	return !errors.Is(err, mysqlwire.ErrTooLarge) && !errors.Is(err, mysqlwire.ErrOutOfOrder) &&
		!errors.Is(err, os.ErrDeadlineExceeded)
}

// abandon cancels the query of a client that went away mid-command; see stopQuery.
func (sess *mysqlSession) abandon(ctx context.Context) {
	sess.log.Debug("client gone mid-command")
	sess.stopQuery(ctx)
}

// abandonGrace is how long a cancelled command may take to end before its session is ended
// under it.
const abandonGrace = 2 * time.Second

// stopQuery cancels the command sess is running, if any, and lets the origin's answer to the
// cancelled query end the command, so that the origin connection goes back clean; if the
// command has not ended after abandonGrace, it ends the session under it. It does not end a
// session that is not running a command.
func (sess *mysqlSession) stopQuery(ctx context.Context) {
	if !sess.busy.Load() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sess.current().Cancel(cctx); err != nil {
		sess.log.Debug("cancelling the command failed", "err", err)
	}
	// Polling, on this rare path, rather than a signal on every command's hot path.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(abandonGrace)
	for sess.busy.Load() {
		select {
		case <-tick.C:
		case <-deadline:
			sess.end(nil, true)
			return
		case <-ctx.Done():
			return
		}
	}
}

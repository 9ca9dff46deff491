package proxy

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// clientPacket is one logical packet from a MySQL client, or why there is none.
type clientPacket struct {
	raw []byte
	err error
	seq byte // of the last header read, for the answer to a refused packet
	// more: the reader goes on to read the packet after this one (clientReader.cont).
	more bool
}

// clientReader reads a MySQL client's packets. While the session has nothing in flight it
// reads them itself; while a command goes to the pool side, a goroutine of its own reads the
// next one, so that a client gone mid-command is noticed at once: a client does not send while
// it waits for an answer, so a read that ends then means the client is gone, and the reader
// cancels the query and ends the session, freeing the origin connection now instead of when the
// abandoned query would have finished. Answers from the cache are written before the session
// reads again, so they need no watching: a run of cache hits costs no hand-off between
// goroutines (a fifth of a hit's CPU when the reader read every packet). The reader keeps
// reading packet after packet while commands keep going to the pool side (cont), so a run of
// those costs no more than one hand-off each either; after a command that did not, it stops
// after the packet it is reading and waits to be armed again.
//
// Buffers: the session's own, for the packets it reads itself, and the reader's two, in turns:
// the reader fills one while the session may still work on the packet in the other. A packet
// is valid until the session asks for the next one. Backpressure: the reader reads one packet
// when armed, and hands it over on an unbuffered channel.
type clientReader struct {
	in    chan clientPacket
	arm   chan struct{} // one read, please; buffered (1)
	done  chan struct{} // closed when the session stops asking
	exit  chan struct{} // closed when the reader has returned
	cont  atomic.Bool   // the reader goes on reading after the packet it hands over
	armed bool          // the session's goroutine only: the reader owns the next read
	sent  bool          // the session's goroutine only: the current command went to the pool side
	own   []byte        // the session's goroutine only: its buffer
}

// startReader starts sess's client reader; stopReader ends it.
func (sess *mysqlSession) startReader(ctx context.Context) *clientReader {
	cr := &clientReader{in: make(chan clientPacket), arm: make(chan struct{}, 1), done: make(chan struct{}),
		exit: make(chan struct{})}
	go func() {
		defer close(cr.exit)
		var bufs [2][]byte
		armed := false
		for i := 0; ; i ^= 1 {
			if !armed {
				select {
				case <-cr.arm:
				case <-cr.done:
					return
				}
			}
			raw, err := sess.r.ReadPacketTo(bufs[i][:0])
			if raw != nil {
				bufs[i] = raw
			}
			if err != nil && sess.busy.Load() && clientGone(err) {
				sess.abandon(ctx)
			}
			armed = cr.cont.Load()
			select {
			case cr.in <- clientPacket{raw: raw, err: err, seq: sess.r.LastSeq(), more: armed}:
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

// watch has the reader read the client's next packet while the session waits on the pool
// side. The session's goroutine calls it before it sends a command on.
func (cr *clientReader) watch() {
	if cr == nil {
		return
	}
	cr.sent = true
	cr.cont.Store(true)
	if !cr.armed {
		cr.armed = true
		cr.arm <- struct{}{}
	}
}

// settle follows a command: the reader goes on reading only if it went to the pool side.
func (cr *clientReader) settle() {
	if cr.armed && !cr.sent {
		cr.cont.Store(false)
	}
	cr.sent = false
}

// next returns the client's next packet; the previous one is no longer valid.
func (sess *mysqlSession) next() clientPacket {
	cr := sess.cr
	if cr.armed {
		p := <-cr.in
		cr.armed = p.more
		return p
	}
	raw, err := sess.r.ReadPacketTo(cr.own[:0])
	if raw != nil {
		cr.own = raw
	}
	if cap(cr.own) > 1<<20 {
		cr.own = nil
	}
	return clientPacket{raw: raw, err: err, seq: sess.r.LastSeq()}
}

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

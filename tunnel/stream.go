package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// clientStream is the edge end of one client session: a QUIC stream of its own, so that QUIC's
// per-stream flow control holds back a slow client's answers without stalling anyone else's.
//
// Send writes and returns; it never waits for the pool. Pending and Pinned are known without
// asking: a batch that draws answers sets pending, and every data frame from the pool end
// carries both flags as they stand after it.
type clientStream struct {
	c    *Client
	conn *quic.Conn
	str  *quic.Stream

	mysql bool // the stream carries MySQL packets (ProtocolParam)

	pending    atomic.Bool
	pinned     atomic.Bool
	cached     atomic.Int64 // the last data frame came from the pool end's cache: ns it stays fresh; 0: not
	closed     atomic.Bool
	terminated atomic.Bool // the client's Terminate went out: Close ends the stream gracefully

	wmu    sync.Mutex // Send and Skip (the session's reader) against a graceful Close
	wbuf   []byte
	writes []byte // a writes frame's payload for the next batch, or nil
	hint   []byte // a hint frame's payload for the next batch, if hinted; reused
	hinted bool
	route  byte // a route frame's flags for the next batch (route.go); 0: none

	// Recv's. A session passes the same context to every Recv: it is watched once, not per
	// call, and its end ends the stream.
	hdr     [headerLen]byte
	watchMu sync.Mutex // Recv against Close
	watched context.Context
	unwatch func() bool
}

// Send implements Stream. It splits a large batch at message boundaries into frames of about
// batchChunk bytes, so the pool end never holds much more of a COPY than that; all but the last
// say that more follows, so that the pool end answers the batch as one.
func (s *clientStream) Send(ctx context.Context, frames []byte) error {
	draws, terminated := false, false
	cut, start := 0, 0
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writes != nil {
		err := s.write(frameWrites, s.writes)
		s.writes = nil
		if err != nil {
			return err
		}
	}
	s.cached.Store(0)
	if s.hinted {
		s.hinted = false
		err := s.write(frameHint, s.hint)
		if cap(s.hint) > 64<<10 {
			s.hint = nil
		}
		if err != nil {
			return err
		}
	}
	if s.mysql {
		// One MySQL command, as the contract of pool/mysql wants it: whole, in one frame.
		draws, quit := mysqlwire.DrawsAnswers(frames)
		if err := s.sendRoute(); err != nil {
			return err
		}
		if err := s.write(frameBatch, frames); err != nil {
			return err
		}
		if draws {
			s.pending.Store(true)
		}
		if quit {
			s.terminated.Store(true)
			return link.ErrTerminated
		}
		return nil
	}
	for i := 0; i+headerLen <= len(frames); {
		switch frames[i] {
		case 'Q', 'S', 'H', 'F', 'c', 'f':
			draws = true
		case 'X':
			terminated = true
		}
		n := int(binary.BigEndian.Uint32(frames[i+1:]))
		if n < 4 || i+1+n > len(frames) {
			break
		}
		i += 1 + n
		cut = i
		if cut-start >= batchChunk && cut < len(frames) {
			if err := s.write(frameMore, frames[start:cut]); err != nil {
				return err
			}
			start = cut
		}
	}
	if start < cut || start > 0 { // the last part, which may be empty after frameMore parts
		if err := s.write(frameBatch, frames[start:cut]); err != nil {
			return err
		}
	}
	if draws {
		s.pending.Store(true)
	}
	if terminated {
		s.terminated.Store(true)
		return link.ErrTerminated
	}
	return nil
}

// write sends one frame; small payloads are copied behind the header to go out in one write.
// s.wmu is held.
func (s *clientStream) write(typ byte, payload []byte) error {
	s.wbuf = appendHeader(s.wbuf[:0], typ, len(payload))
	var err error
	if len(payload) <= 32<<10 {
		s.wbuf = append(s.wbuf, payload...)
		_, err = s.str.Write(s.wbuf)
	} else if _, err = s.str.Write(s.wbuf); err == nil {
		_, err = s.str.Write(payload)
	}
	if cap(s.wbuf) > 64<<10 {
		s.wbuf = nil
	}
	if err != nil {
		return s.lost(err)
	}
	return nil
}

// lost maps a failed read or write of the stream to the error a Stream reports. A stream the
// pool end stopped (it ended the session, its reason in an error frame before) is the pool
// side of the session lost, not the pool: nothing is sent to another pool for it, unless the
// pool end stopped it for a shutdown.
func (s *clientStream) lost(err error) error {
	if s.closed.Load() {
		return errStreamClosed
	}
	if se := (*quic.StreamError)(nil); errors.As(err, &se) && se.Remote && se.ErrorCode != codeShutdown {
		return fmt.Errorf("%w: the pool end ended the session: %w", link.ErrOriginLost, err)
	}
	return fmt.Errorf("%w: tunnel: %w", ErrPoolLost, err)
}

// Recv implements Stream: it returns the answers of one data frame.
func (s *clientStream) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	s.watchMu.Lock()
	if ctx != s.watched && !s.closed.Load() {
		if s.unwatch != nil {
			s.unwatch()
		}
		s.watched = ctx
		s.unwatch = context.AfterFunc(ctx, func() { s.str.CancelRead(codeStreamClosed) })
	}
	s.watchMu.Unlock()
	typ, n, err := readHeader(s.str, &s.hdr)
	if err != nil {
		return dst, s.recvFailed(ctx, err)
	}
	switch typ {
	case frameData:
		if n < 1 {
			return dst, s.recvFailed(ctx, errBadFrame)
		}
		if _, err := io.ReadFull(s.str, s.hdr[:1]); err != nil {
			return dst, s.recvFailed(ctx, err)
		}
		flags := s.hdr[0]
		n--
		if flags&flagCached != 0 {
			if n < 4 {
				return dst, s.recvFailed(ctx, errBadFrame)
			}
			if _, err := io.ReadFull(s.str, s.hdr[:4]); err != nil {
				return dst, s.recvFailed(ctx, err)
			}
			fresh := time.Duration(binary.BigEndian.Uint32(s.hdr[:4])) * time.Millisecond
			s.cached.Store(int64(max(fresh, time.Millisecond)))
			n -= 4
		}
		if dst, err = readPayload(s.str, dst, n); err != nil {
			return dst, s.recvFailed(ctx, err)
		}
		s.pinned.Store(flags&flagPinned != 0)
		s.pending.Store(flags&flagPending != 0)

		return dst, nil
	case frameError:
		b, err := readPayload(s.str, nil, n)
		if err != nil {
			return dst, s.recvFailed(ctx, err)
		}
		s.pending.Store(false)
		return dst, decodeError(b)
	}
	return dst, s.recvFailed(ctx, fmt.Errorf("%w: unexpected frame type %q", errBadFrame, typ))
}

func (s *clientStream) recvFailed(ctx context.Context, err error) error {
	s.pending.Store(false)
	if ctx.Err() != nil && !s.closed.Load() {
		return ctx.Err()
	}
	return s.lost(err)
}

// ReportWrites says that the session's transaction, with the batch sent next, writes tables
// (all: any table) of its database: the pool end tells every other edge, and waits for them to
// drop their cached reads of those tables, before it sends the answer that ends the batch.
func (s *clientStream) ReportWrites(tables []string, all bool) {
	s.wmu.Lock()
	s.writes = appendWrites(s.writes[:0], tables, all)
	s.wmu.Unlock()
}

// HintCacheable says that the batch sent next is one unit whose answer the edge keeps in its
// cache under key, reading tables of the session's database, fresh for maxAge and then stale
// for swr: the pool end may answer it from its own cache, shared by all its edges, and keeps
// the answer there otherwise. A hint that can't name every table is not sent.
func (s *clientStream) HintCacheable(key []byte, tables []string, maxAge, swr time.Duration) {
	s.wmu.Lock()
	s.hint, s.hinted = appendHint(s.hint[:0], key, tables, maxAge, swr)
	s.wmu.Unlock()
}

// FromPoolCache reports whether the answers received last came from the pool end's cache
// rather than the origin, and for how much longer they may be served as fresh.
func (s *clientStream) FromPoolCache() (time.Duration, bool) {
	d := s.cached.Load()
	return time.Duration(d), d > 0
}

// Pending implements Stream.
func (s *clientStream) Pending() bool { return s.pending.Load() }

// Pinned implements Stream.
func (s *clientStream) Pinned() bool { return s.pinned.Load() }

// Skip implements Stream.
func (s *clientStream) Skip(frames []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.write(frameSkip, frames)
}

// Cancel implements Stream: a request on a stream of its own, on the session's connection.
func (s *clientStream) Cancel(ctx context.Context) error {
	return s.c.cancel(ctx, s.conn, s.str.StreamID())
}

// Close implements Stream. After the client's Terminate the stream ends gracefully, so that
// what the client sent before it still reaches the origin; otherwise it is reset at once.
func (s *clientStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.watchMu.Lock()
	if s.unwatch != nil {
		s.unwatch() // the context outlives the stream: don't leave a callback on it
		s.unwatch = nil
	}
	s.watchMu.Unlock()
	s.str.CancelRead(codeStreamClosed)
	if s.terminated.Load() && s.wmu.TryLock() {
		s.str.Close()
		s.wmu.Unlock()
		return nil
	}
	s.str.CancelWrite(codeStreamClosed)
	return nil
}

// CacheCurrent reports whether the edge may serve cached answers now (Client.CacheCurrent).
func (s *clientStream) CacheCurrent() bool { return s.c.CacheCurrent() }

// Caps: the pool end across the tunnel tells the pool's other edges about writes, may keep a
// cache of its own, and leases this edge's cache; a MySQL session's may send reads to a
// replica (route.go).
func (s *clientStream) Caps() link.Caps {
	c := link.Caps{Writes: s, PoolCache: s, Lease: s}
	if s.mysql {
		c.Replica = s
	}
	return c
}

package tunnel

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/quic-go/quic-go"
)

// A pool that invalidates from a database's change stream (pool/changes) passes the stream's
// state to its edges, so that an edge's cache keeps to the same guarantee as the pool's own:
// while the stream is down, catching up or behind by more than max_lag, the edge serves and
// keeps no answer of the database (its cache is suspended, not only emptied); while it is
// current, the edge knows until when the stream vouches for the database's answers and counts
// any answer it serves after that (cache.DBStats.ReadsBehind, which must stay 0).
//
// A suspension or a resumption goes to every edge at once on an invalidation stream, and the
// pool's change waits for each edge's acknowledgement (or closes its connection after
// AckTimeout), as an invalidation does. Every state, with the time the stream vouches until,
// also rides on each lease renewal (a new connection hears them before its first lease, so
// before its edge may serve anything). States are numbered: an edge applies one only if it is
// newer than the last it applied of the database, whichever stream brought it first.

// StreamStates is what an edge's cache does with its pool's change-stream states (cache.Cache
// is one): suspended, Suspend; current, Resume and CurrentUntil (the zero time: no limit).
type StreamStates interface {
	Suspend(db string)
	Resume(db string)
	CurrentUntil(db string, t time.Time)
}

// streamState is one database's change-stream state at the pool end.
type streamState struct {
	seq       uint64
	suspended bool
	until     time.Time // current: vouched until then; zero: no limit
}

// Flags of a stream-state frame.
const (
	stateSuspended byte = 1
	stateLimited   byte = 2 // the payload's milliseconds limit the database's answers
)

// appendStreamState encodes a frameStreamState payload: database NUL, flags, the big-endian
// uint64 sequence number, and a big-endian uint32: how many milliseconds from when it was sent
// the stream vouches for the database's answers.
func appendStreamState(dst []byte, db string, st streamState, now time.Time) []byte {
	dst = append(append(dst, db...), 0)
	var flags byte
	var ms uint32
	switch {
	case st.suspended:
		flags = stateSuspended
	case !st.until.IsZero():
		flags = stateLimited
		ms = uint32(min(max(st.until.Sub(now), 0), time.Duration(1<<32-1)*time.Millisecond) / time.Millisecond)
	}
	dst = binary.BigEndian.AppendUint64(append(dst, flags), st.seq)
	return binary.BigEndian.AppendUint32(dst, ms)
}

// parseStreamState decodes a frameStreamState payload; the duration is the limit's remaining
// time as sent.
func parseStreamState(b []byte) (db string, st streamState, left time.Duration, err error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 || len(b) != i+1+1+8+4 {
		return "", st, 0, errBadFrame
	}
	db, b = string(b[:i]), b[i+1:]
	flags := b[0]
	st.seq = binary.BigEndian.Uint64(b[1:9])
	st.suspended = flags&stateSuspended != 0
	if flags&stateLimited != 0 && !st.suspended {
		left = time.Duration(binary.BigEndian.Uint32(b[9:13])) * time.Millisecond
		st.until = time.Unix(0, 1) // marks a limit; the edge sets the time
	}
	return db, st, left, nil
}

// setStreamState changes db's state with f and numbers it after every earlier one.
func (s *Server) setStreamState(db string, f func(*streamState)) {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.states == nil {
		s.states = map[string]streamState{}
	}
	st := s.states[db]
	f(&st)
	s.seq++
	st.seq = s.seq
	s.states[db] = st
}

// tellStreamState sends db's current state to every edge and returns when each has applied it
// or has been closed for not doing so within AckTimeout.
func (s *Server) tellStreamState(db string) {
	s.smu.Lock()
	st := s.states[db]
	s.smu.Unlock()
	s.tell(nil, db, appendFrame([]byte{version, kindInvalidate}, frameStreamState, appendStreamState(nil, db, st, time.Now())))
}

// SuspendStream tells every edge that db's change stream is down, catching up or behind: the
// edges serve and keep none of db's answers until ResumeStream. It returns once each edge has
// applied it (or was closed for not acknowledging within AckTimeout).
func (s *Server) SuspendStream(db string) {
	s.setStreamState(db, func(st *streamState) { st.suspended = true })
	s.tellStreamState(db)
}

// ResumeStream tells every edge that db's change stream is current again, vouching for its
// answers until the time StreamCurrentUntil last recorded, and returns once each has applied
// it.
func (s *Server) ResumeStream(db string) {
	s.setStreamState(db, func(st *streamState) { st.suspended = false })
	s.tellStreamState(db)
}

// StreamCurrentUntil records until when db's change stream vouches for db's answers; the
// lease renewals take it to the edges. The zero time: no limit (the database went back to
// max_age). It does not wait for the edges, and leaves a suspended database suspended.
func (s *Server) StreamCurrentUntil(db string, until time.Time) {
	s.setStreamState(db, func(st *streamState) { st.until = until })
}

// streamStateFrames appends every database's state as frames, for a lease renewal.
func (s *Server) streamStateFrames(dst []byte) []byte {
	now := time.Now()
	s.smu.Lock()
	defer s.smu.Unlock()
	for db, st := range s.states {
		dst = appendFrame(dst, frameStreamState, appendStreamState(nil, db, st, now))
	}
	return dst
}

// applyStreamState applies a state the pool sent on conn to the edge's cache, unless the edge
// has applied a newer one of the database.
func (c *Client) applyStreamState(conn *quic.Conn, b []byte) error {
	db, st, left, err := parseStreamState(b)
	if err != nil {
		return err
	}
	states, ok := c.cfg.Cache.(StreamStates)
	if !ok {
		return nil
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	if st.seq <= c.stateSeqs[db] {
		return nil
	}
	if c.stateSeqs == nil {
		c.stateSeqs = map[string]uint64{}
	}
	c.stateSeqs[db] = st.seq
	switch {
	case st.suspended:
		states.Suspend(db)
	case st.until.IsZero():
		states.CurrentUntil(db, time.Time{})
		states.Resume(db)
	default:
		// Counted from when it was sent, about half the smoothed RTT ago, as a lease is.
		states.CurrentUntil(db, time.Now().Add(left-conn.ConnectionStats().SmoothedRTT/2))
		states.Resume(db)
	}
	return nil
}

// forgetStreamStates lifts the states the edge had from its pool before a new connection (a
// restarted pool numbers its states from 1 again, and may no longer stream a database): the
// new connection's lease stream brings the pool's states before its first lease.
func (c *Client) forgetStreamStates() {
	states, ok := c.cfg.Cache.(StreamStates)
	if !ok {
		return
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	for db := range c.stateSeqs {
		states.CurrentUntil(db, time.Time{})
		states.Resume(db)
	}
	c.stateSeqs = nil
}

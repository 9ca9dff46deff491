package pool

import (
	"net"
	"syscall"
)

// Idle origin connections die without telling anyone who is not reading them: PostgreSQL's
// pg_terminate_backend, a restart or an idle_session_timeout send a FATAL ErrorResponse and
// close; MariaDB's KILL and wait_timeout close (MySQL 8 sends an ERR first); a cloud provider's
// idle reaper just closes. Nothing is ever due from a connection nobody uses, so a byte or an
// end of stream waiting on its socket means the origin is done with it. Dead looks for
// that with one non-blocking MSG_PEEK on the socket (Peer), no round trip: Slots asks before it hands
// an idle connection out (Slotted.Dead) and its reaper asks every idle connection once a
// second, so dead ones are closed and replaced by new dials, never given to a client.

// Peer peeks at the socket of one origin connection. It is made once per connection, when the
// connection is dialled, so that a check allocates nothing; it is used by one goroutine at a
// time (Slots calls Dead under its lock, on idle connections only).
type Peer struct {
	raw    syscall.RawConn
	closed bool
	peek   func(fd uintptr) bool
}

// NewPeer returns the Peer of nc, looking under TLS at the TCP socket beneath: a close_notify,
// an alert or any record is as good as a close. A connection that is not a socket (an embedded
// origin's pipe) gets a nil Peer, which never reports a close.
func NewPeer(nc net.Conn) *Peer {
	for {
		u, ok := nc.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			break
		}
		nc = u.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &Peer{raw: raw}
	p.peek = func(fd uintptr) bool {
		p.closed = peekClosed(fd)
		return true // never wait for the socket to become readable
	}
	return p
}

// Closed reports, without blocking or consuming anything, whether the origin closed the
// connection or sent something on it that nobody has read.
func (p *Peer) Closed() bool {
	if p == nil {
		return false
	}
	if err := p.raw.Read(p.peek); err != nil {
		return true
	}
	return p.closed
}

package pool

import (
	"net"
	"syscall"
)

// Idle origin connections die without telling anyone who is not reading them: PostgreSQL's
// pg_terminate_backend, a restart or an idle_session_timeout send a FATAL ErrorResponse and
// close; MariaDB's KILL and wait_timeout close (MySQL 8 sends an ERR first); a cloud provider's
// idle reaper just closes. Nothing is ever due from a connection nobody uses, so a byte or an
// end of stream waiting on its socket means the origin is done with it. PeerClosed looks for
// that with one non-blocking MSG_PEEK on the socket, no round trip: Slots asks before it hands
// an idle connection out (Slotted.Dead) and its reaper asks every idle connection once a
// second, so dead ones are closed and replaced by new dials, never given to a client.

// PeerClosed reports, without blocking or consuming anything, whether the origin closed nc or
// sent something on it that nobody has read. Under TLS it looks at the TCP socket beneath: a
// close_notify, an alert or any record is as good as a close. A connection that is not a
// socket (an embedded origin's pipe) is never reported closed.
func PeerClosed(nc net.Conn) bool {
	for {
		u, ok := nc.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			break
		}
		nc = u.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		closed = peekClosed(fd)
		return true // never wait for the socket to become readable
	})
	return closed || err != nil
}

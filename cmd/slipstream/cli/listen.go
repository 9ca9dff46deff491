package cli

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenTCP listens on addr with SO_REUSEPORT, so that a new slipstream process can start on
// the same addresses while this one still runs, and then steers every new connection to the
// newest process (preferNewest): the old one gets none from then on, drains (SIGTERM) and
// closes its listeners with nothing left in their accept queues. That is the zero-downtime
// upgrade; see deploy/README.md. Linux lets only processes of the same user share a port.
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		return sockopt(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
	}}
	// Plain TCP: Go listens with MPTCP where the kernel has it, and an MPTCP socket refuses
	// the reuseport program (EOPNOTSUPP).
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := preferNewest(ln); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// listenAs is listenTCP for a listener a handover passes on (role: pg, mysql or http): a
// process started by a handover (SIGUSR2, handover.go) takes the old process's listener of the
// same role and configured address instead, the same socket, accept queue and all.
func listenAs(role, addr string) (net.Listener, error) {
	if ln, err := fromPredecessor().listener(role, addr); ln != nil || err != nil {
		return ln, err
	}
	return listenTCP(addr)
}

// preferNewest attaches to ln's SO_REUSEPORT group a one-instruction classic BPF program that
// picks the group's second socket for every new connection. Sockets join a group in order, so
// with an old process and a new one on the address that is the new one's; with one process
// alone the index is out of range and the kernel falls back to its usual choice, that one.
// When the old process closes its socket the new one's takes its place as the first, and a
// third process started later takes over the same way. Without this the kernel would spread
// connections over both processes by hash, and the ones queued on the old socket when it
// closes would be reset.
func preferNewest(ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 1}}
	return sockopt(rc, func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
}

// sockopt runs set on c's file descriptor.
func sockopt(c syscall.RawConn, set func(fd int) error) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = set(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt: %w", serr)
	}
	return nil
}

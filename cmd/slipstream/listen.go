package main

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenTCP listens on addr with SO_REUSEPORT, so that a new slipstream process can start on
// the same addresses while this one still runs: the kernel spreads new connections over both
// until this one drains (SIGTERM) and closes its listeners. That is the zero-downtime upgrade;
// see deploy/README.md. Linux lets only processes of the same user share a port this way.
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("SO_REUSEPORT: %w", serr)
		}
		return nil
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

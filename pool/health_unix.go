//go:build linux || darwin || freebsd || netbsd || openbsd

package pool

import (
	"errors"
	"syscall"
)

// peekClosed peeks at one byte of socket fd without blocking: none there yet (EAGAIN) means
// alive; a byte, an end of stream or an error (a reset) means the peer is done.
func peekClosed(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK)
	}
}

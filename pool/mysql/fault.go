package mysqlpool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/slipstream-proxy/slipstream/link"
)

// originLost wraps a failed read or write of an origin connection for the edge. When the
// origin closed the connection (end of stream, a reset, a broken pipe) it is link.ErrOriginEnded:
// MariaDB says nothing to a connection it kills (KILL CONNECTION, a shutdown, wait_timeout),
// not even to one waiting on a command, so a direct client sees its connection close; the edge
// closes the client's connection the same way, without an error packet, and may send a read
// outside a transaction again on another connection (proxy's mysqlRetryable). Anything else
// (a malformed answer, a timeout) is link.ErrOriginLost, which the client is told about.
func originLost(err error) error {
	if closedByOrigin(err) {
		return fmt.Errorf("%w: %w", link.ErrOriginEnded, err)
	}
	return fmt.Errorf("%w: %w", link.ErrOriginLost, err)
}

// closedByOrigin reports whether err is what reading or writing a connection the other end
// closed returns.
func closedByOrigin(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

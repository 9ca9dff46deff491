package cli

import (
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// notifier tells systemd about the service's state (sd_notify(3)) when it runs as a
// Type=notify unit: READY=1 once serving, RELOADING=1 while a reload runs, STOPPING=1 when it
// drains. The protocol is one datagram per message to the Unix socket in $NOTIFY_SOCKET; a
// leading @ names a socket in the abstract namespace. Without the variable it does nothing.
type notifier struct {
	addr *net.UnixAddr
}

// newNotifier returns the notifier of $NOTIFY_SOCKET, or nil when it is not set.
func newNotifier() *notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	return &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// send sends one state message, such as "READY=1"; a nil notifier sends nothing.
func (n *notifier) send(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// reloading is the message that starts a reload: systemd (Type=notify-reload, and
// `systemctl reload` with Type=notify) wants the monotonic clock's time with it.
func reloading() string {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}

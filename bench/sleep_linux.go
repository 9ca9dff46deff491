package bench

import (
	"syscall"
	"time"
)

// osSleep blocks its thread in nanosleep(2) for d, which the kernel's high-resolution timers
// end within tens of microseconds, unlike the runtime's timers (see Relay.sleepUntil). The
// runtime gives the thread's P to another one meanwhile.
func osSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

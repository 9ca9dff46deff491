//go:build !linux

package bench

import "time"

// osSleep is time.Sleep where the relay has no finer sleep.
func osSleep(d time.Duration) { time.Sleep(d) }

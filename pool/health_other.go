//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package pool

// peekClosed cannot peek on this platform: the connection counts as alive, and a dead one is
// found when a unit is sent on it (retry.go).
func peekClosed(fd uintptr) bool { return false }

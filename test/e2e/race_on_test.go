//go:build race

package e2e

// raceEnabled: the race detector slows the test process and the serve child about tenfold.
const raceEnabled = true

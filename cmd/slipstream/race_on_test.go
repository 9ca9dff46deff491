//go:build race

package main

// raceEnabled: the race detector slows the test process and the serve child about tenfold.
const raceEnabled = true

//go:build race

package classify

// raceEnabled says the race detector is on; it makes sync.Pool drop items at random, so
// allocation budgets can't hold.
const raceEnabled = true

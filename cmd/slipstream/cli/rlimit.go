package cli

import (
	"log/slog"
	"syscall"
)

// RaiseFileLimit raises the process's open-file limit (RLIMIT_NOFILE) from its soft value to
// its hard one, so that one process can hold tens of thousands of client connections
// without the operator's `ulimit -n`, and logs one line saying the limit it runs with or
// why it could not raise it. It never fails the command: a low limit only caps the number
// of connections, and the log line says so. It returns the soft limit in force afterwards.
//
// Go's os package (1.19+) already raises the soft limit at start-up on Linux, and lowers it
// again for the child processes it starts; this keeps the raise explicit, covers a runtime
// that does not, and puts the limit the process runs with in its log.
func RaiseFileLimit(log *slog.Logger) uint64 {
	return raiseFileLimitWith(log, syscall.Getrlimit, syscall.Setrlimit)
}

// raiseFileLimitWith is RaiseFileLimit with the system calls passed in, for the tests.
func raiseFileLimitWith(log *slog.Logger, get, set func(int, *syscall.Rlimit) error) uint64 {
	var lim syscall.Rlimit
	if err := get(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("open file limit: cannot read it; client connections are capped by whatever it is", "err", err)
		return 0
	}
	if lim.Cur >= lim.Max {
		// Nothing changed: said at debug only, so that a start that fails at once stays one line.
		log.Debug("open file limit", "soft", lim.Cur, "hard", lim.Max)
		return lim.Cur
	}
	was := lim.Cur
	lim.Cur = lim.Max
	if err := set(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("open file limit: cannot raise the soft limit to the hard one; client connections are capped by the soft limit",
			"soft", was, "hard", lim.Max, "err", err)
		return was
	}
	log.Info("open file limit raised", "soft", lim.Cur, "was", was, "hard", lim.Max)
	return lim.Cur
}

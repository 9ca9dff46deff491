// Package testserver runs one throw-away database server process for the integration tests:
// the mechanics internal/pgtest (PostgreSQL) and internal/mytest (MariaDB) share, while they
// keep what differs (binaries, flags, users, how to ping and set up) in a Spec.
//
// It owns the temporary directory, the free loopback port, the child process and its reaping,
// running it as an unprivileged user when the tests run as root (internal/sysuser), and
// stopping it once. It must not be imported by the product, nor know any database's protocol.
//
// Start reading from Process.Start:
//
//	Start: mkdtemp (chowned to Spec.User) ─> Spec.Install ─> free port ─> Spec.Server (child
//	       process) ─> Spec.Ping until ready (a new port if it was taken) ─> Spec.Setup
//	Stop:  Spec.Shutdown or SIGTERM ─> reap the child (SIGKILL after 10 s) ─> rm -rf the directory
//
// Main is what pgtest.Main and mytest.Main wrap for a package's TestMain.
//
// Concurrency: a Process's exported fields are read-only after Start; Stop may be called from
// any goroutine, any number of times.
package testserver

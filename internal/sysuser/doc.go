// Package sysuser finds the unprivileged system user a database server runs as when this
// process is root: PostgreSQL, PgBouncer and pgpool-II refuse to run as root, and MariaDB is
// meant to run as its own user. The test servers (internal/testserver) and the bench harness
// use it to set exec.Cmd's SysProcAttr.Credential.
//
// It only reads the user database; it must not change this process's own identity.
// Start reading from Credential. It is safe for concurrent use.
package sysuser

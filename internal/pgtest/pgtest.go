// Package pgtest starts a real, throw-away PostgreSQL 15 server for integration tests.
//
// It owns one server per Start call: a fresh temporary directory holding the data directory,
// the unix socket and postgres.log; a postmaster listening only on 127.0.0.1 at a free port;
// and three roles with known passwords (see the constants). It must not be imported by the
// product: only _test.go files and the bench harness use it.
//
// Start reading from Main, which is what a package's TestMain calls:
//
//	var srv *pgtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &srv)) }
//
// Tests then connect with srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB).
//
// Lifecycle:
//
//	Start: mkdtemp ─> initdb (as postgres) ─> write pg_hba.conf ─> postgres -c ... (child process)
//	       ─> poll connect until ready ─> create roles and database ─> *Server
//	Stop:  pg_ctl stop -m immediate ─> reap the child ─> rm -rf the directory
//
// When the test process runs as root, every PostgreSQL binary runs as the user "postgres"
// (PostgreSQL refuses to run as root), so the directory is chowned to that user.
//
// The process mechanics it shares with internal/mytest (the directory, the free port, the child
// process, Stop) live in internal/testserver.
//
// Concurrency: a Server's fields are read-only after Start; Stop may be called from any
// goroutine, any number of times.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/internal/testserver"
)

// Roles and passwords every server has. Tests may rely on them.
const (
	AdminUser     = "postgres"
	AdminPassword = "postgres-secret"
	AppUser       = "app" // owns database AppDB, password stored as SCRAM-SHA-256
	AppPassword   = "app-secret"
	AppDB         = "app"
	MD5User       = "md5user" // password stored as md5, pg_hba method md5
	MD5Password   = "md5-secret"
)

// DefaultBinDir is where Debian's postgresql-15 package puts the server binaries.
// The environment variable SLIPSTREAM_TEST_PG_BIN overrides it.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// Server is a running PostgreSQL. Host and Port are its TCP address on loopback.
type Server struct {
	Host string
	Port int

	binDir string
	proc   testserver.Process // its Dir holds data/, postgres.log, the unix socket
	tls    *TLS
}

// TLS is a server certificate and its key, PEM-encoded, for StartTLS.
type TLS struct {
	CertPEM, KeyPEM []byte
}

// Main starts a server, stores it in *srv, runs the package's tests and stops the server.
// It returns the exit code for os.Exit. A server that fails to start fails the package
// (it does not skip): CI must not pass without having run the integration tests.
func Main(m *testing.M, srv **Server) int { return testserver.Main(m, srv, Start) }

// Start creates a fresh cluster in a temporary directory, starts it and waits until it accepts
// connections. The caller must call Stop. If ctx has no deadline, Start gives up after a minute.
func Start(ctx context.Context) (*Server, error) { return StartTLS(ctx, nil) }

// StartTLS is Start with TLS on (ssl=on with cert's certificate and key) when cert is not nil:
// clients may connect with sslmode=require or verify-full, and still without TLS.
func StartTLS(ctx context.Context, cert *TLS) (*Server, error) {
	binDir := DefaultBinDir
	if v := os.Getenv("SLIPSTREAM_TEST_PG_BIN"); v != "" {
		binDir = v
	}
	if _, err := os.Stat(filepath.Join(binDir, "postgres")); err != nil {
		return nil, fmt.Errorf("pgtest: no PostgreSQL server binaries in %s (set SLIPSTREAM_TEST_PG_BIN, "+
			"or run ./scripts/test.sh, the README's test command, which installs postgresql-15): %w", binDir, err)
	}
	s := &Server{Host: "127.0.0.1", binDir: binDir, tls: cert}
	s.proc.Spec = testserver.Spec{
		Pkg: "pgtest", Program: "postgres", User: "postgres",
		LogFile: "postgres.log", CaptureOutput: true, Deathsig: syscall.SIGQUIT,
		Install: s.initdb, Server: s.postgres, Ping: s.ping, Setup: s.setup, Shutdown: s.pgCtlStop,
	}
	if err := s.proc.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// URL returns a connection string for user on database db, over TCP, without TLS.
func (s *Server) URL(user, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// AdminURL returns a connection string for the superuser on database postgres.
func (s *Server) AdminURL() string { return s.URL(AdminUser, AdminPassword, "postgres") }

// Stop shuts the server down without a checkpoint and removes its directory.
func (s *Server) Stop() error { return s.proc.Stop() }

// pgCtlStop asks postgres to exit; testserver kills it if it ignores that.
func (s *Server) pgCtlStop() error {
	stop := s.command(context.Background(), "pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate", "-w")
	out, err := stop.CombinedOutput()
	return fmt.Errorf("pg_ctl stop (%v: %s)", err, bytes.TrimSpace(out))
}

// command prepares one of the PostgreSQL binaries to run as the server's user in its directory.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return s.proc.Command(ctx, filepath.Join(s.binDir, name), args...)
}

func (s *Server) dataDir() string { return filepath.Join(s.proc.Dir, "data") }

// hbaConf lets md5user in with md5 and everyone else with SCRAM, over loopback and the socket.
const hbaConf = `local all all scram-sha-256
host all md5user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
`

func (s *Server) initdb(ctx context.Context) error {
	pwfile := filepath.Join(s.proc.Dir, "pwfile")
	if err := s.writeFile(pwfile, AdminPassword+"\n"); err != nil {
		return err
	}
	cmd := s.command(ctx, "initdb", "-D", s.dataDir(), "-U", AdminUser, "--pwfile", pwfile,
		"--auth=scram-sha-256", "--locale=C", "--encoding=UTF8", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if s.tls != nil {
		if err := s.writeFile(filepath.Join(s.dataDir(), "server.crt"), string(s.tls.CertPEM)); err != nil {
			return err
		}
		if err := s.writeFile(filepath.Join(s.dataDir(), "server.key"), string(s.tls.KeyPEM)); err != nil {
			return err
		}
	}
	return s.writeFile(filepath.Join(s.dataDir(), "pg_hba.conf"), hbaConf)
}

// writeFile writes a file the server's user can read.
func (s *Server) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return s.proc.Chown(path)
}

// postgres is the server on port, for testserver to start.
func (s *Server) postgres(port int) *exec.Cmd {
	s.Port = port
	// Settings go on the command line so the cluster's files stay initdb's.
	// Durability is off: the data is thrown away anyway. Not ctx: the server outlives Start.
	args := []string{"-D", s.dataDir(),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.proc.Dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		"-c", "password_encryption=scram-sha-256",
		// Logical replication, for the change-stream tests (pool/changes): the app role has no
		// REPLICATION attribute, so that other tests' pools fall back to max_age as they always did.
		"-c", "wal_level=logical",
		"-c", "max_replication_slots=50",
		"-c", "max_wal_senders=60",
	}
	if s.tls != nil { // server.crt and server.key in the data directory, PostgreSQL's defaults
		args = append(args, "-c", "ssl=on")
	}
	return s.command(context.Background(), "postgres", args...)
}

func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// setup creates the roles and database the constants promise.
func (s *Server) setup(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	// Passwords are test constants without quotes, so plain string building is safe here.
	for _, stmt := range []string{
		"CREATE ROLE " + AppUser + " LOGIN PASSWORD '" + AppPassword + "'",
		"CREATE DATABASE " + AppDB + " OWNER " + AppUser,
		// password_encryption decides how CREATE ROLE stores the password, so md5user gets an md5 hash.
		"SET password_encryption = 'md5'",
		"CREATE ROLE " + MD5User + " LOGIN PASSWORD '" + MD5Password + "'",
		"RESET password_encryption",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("pgtest: create roles: %w", err)
		}
	}
	return nil
}

// Package mytest starts a real, throw-away MariaDB server for integration tests.
//
// It owns one server per Start call: a fresh temporary directory holding the data directory,
// the unix socket and error.log; a mariadbd listening only on 127.0.0.1 at a free port; and
// users with known passwords (see the constants). It must not be imported by the product: only
// _test.go files and the bench harness use it.
//
// Start reading from Main, which is what a package's TestMain calls:
//
//	var srv *mytest.Server
//
//	func TestMain(m *testing.M) { os.Exit(mytest.Main(m, &srv)) }
//
// Tests then connect with srv.DSN(mytest.AppUser, mytest.AppPassword, mytest.AppDB) (the
// go-sql-driver/mysql form) or srv.URL(...) (mysql://, what slipstream's --origin takes).
//
// Lifecycle:
//
//	Start: mkdtemp ─> mariadb-install-db ─> mariadbd --no-defaults ... (child process)
//	       ─> poll connect as root over the socket until ready ─> create users and database
//	Stop:  SIGTERM ─> reap the child (SIGKILL after 10 s) ─> rm -rf the directory
//
// When the test process runs as root the server runs as user "mysql" (Debian's mariadb-server
// package creates it), and the directory is chowned to that user.
//
// The process mechanics it shares with internal/pgtest (the directory, the free port, the child
// process, Stop) live in internal/testserver.
//
// Concurrency: a Server's fields are read-only after Start; Stop may be called from any
// goroutine, any number of times.
package mytest

import (
	"context"
	"database/sql"
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

	"github.com/go-sql-driver/mysql"

	"github.com/slipstream-proxy/slipstream/internal/testserver"
)

// Users and passwords every server has. Tests may rely on them.
const (
	RootUser    = "root" // over the unix socket only, no password
	AppUser     = "app"  // all privileges on AppDB, mysql_native_password
	AppPassword = "app-secret"
	AppDB       = "app"
)

// Server is a running MariaDB. Host and Port are its TCP address on loopback.
type Server struct {
	Host string
	Port int

	proc testserver.Process // its Dir holds data/, tmp/, error.log, the unix socket
	tls  *TLS
}

// TLS is a server certificate and its key, PEM-encoded, for StartTLS.
type TLS struct {
	CertPEM, KeyPEM []byte
}

// Main starts a server, stores it in *srv, runs the package's tests and stops the server. It
// returns the exit code for os.Exit. A server that fails to start fails the package (it does
// not skip): CI must not pass without having run the integration tests.
func Main(m *testing.M, srv **Server) int { return testserver.Main(m, srv, Start) }

// Start creates a fresh server in a temporary directory, starts it and waits until it accepts
// connections. The caller must call Stop.
func Start(ctx context.Context) (*Server, error) { return StartTLS(ctx, nil) }

// StartTLS is Start with TLS on (--ssl-cert, --ssl-key) when cert is not nil: clients may
// connect with TLS, and users created REQUIRE SSL must.
func StartTLS(ctx context.Context, cert *TLS) (*Server, error) {
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("mytest: %s not found (run ./scripts/test.sh, the README's test command, "+
				"which installs mariadb-server): %w", bin, err)
		}
	}
	s := &Server{Host: "127.0.0.1", tls: cert}
	s.proc.Spec = testserver.Spec{
		Pkg: "mytest", Program: "mariadbd", User: "mysql",
		LogFile: "error.log", Deathsig: syscall.SIGKILL,
		Install: s.install, Server: s.mariadbd, Ping: s.ping, Setup: s.setup,
	}
	if err := s.proc.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// URL returns a mysql:// connection string for user on database db over TCP, the form
// slipstream's --origin takes.
func (s *Server) URL(user, password, db string) string {
	u := url.URL{Scheme: "mysql", User: url.UserPassword(user, password),
		Host: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), Path: "/" + db}
	return u.String()
}

// Addr is the server's TCP address.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DSN returns a go-sql-driver/mysql data source name for user on database db over TCP.
func (s *Server) DSN(user, password, db string) string {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = user, password, "tcp", s.Addr(), db
	return c.FormatDSN()
}

// Socket is the path of the server's unix socket.
func (s *Server) Socket() string { return filepath.Join(s.proc.Dir, "mysqld.sock") }

// RootDSN returns a data source name for root over the unix socket.
func (s *Server) RootDSN() string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = RootUser, "unix", s.Socket()
	return c.FormatDSN()
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() error { return s.proc.Stop() }

// Restart shuts the server down as a service manager does (SIGTERM: every connection is
// killed) and starts it again on the same port, returning once it accepts connections.
func (s *Server) Restart(ctx context.Context) error { return s.proc.Restart(ctx) }

func (s *Server) dataDir() string { return filepath.Join(s.proc.Dir, "data") }
func (s *Server) tmpDir() string  { return filepath.Join(s.proc.Dir, "tmp") }

func (s *Server) install(ctx context.Context) error {
	// A tmpdir of its own: two servers installing at once collide on /tmp/#sql-temptable-*.
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return fmt.Errorf("mytest: %w", err)
	}
	if err := s.proc.Chown(s.tmpDir()); err != nil {
		return err
	}
	cmd := s.proc.Command(ctx, "mariadb-install-db", "--no-defaults", "--datadir="+s.dataDir(), "--tmpdir="+s.tmpDir(),
		"--auth-root-authentication-method=socket", "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mytest: mariadb-install-db: %w\n%s", err, out)
	}
	if s.tls != nil {
		for name, pem := range map[string][]byte{"server.crt": s.tls.CertPEM, "server.key": s.tls.KeyPEM} {
			path := filepath.Join(s.proc.Dir, name)
			if err := os.WriteFile(path, pem, 0o600); err != nil {
				return fmt.Errorf("mytest: %w", err)
			}
			if err := s.proc.Chown(path); err != nil {
				return err
			}
		}
	}
	return nil
}

// mariadbd is the server on port, for testserver to start.
func (s *Server) mariadbd(port int) *exec.Cmd {
	s.Port = port
	// Durability is off: the data is thrown away anyway. Not ctx: the server outlives Start.
	args := []string{"--no-defaults", "--datadir=" + s.dataDir(), "--tmpdir=" + s.tmpDir(), "--socket=" + s.Socket(),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--log-error=" + filepath.Join(s.proc.Dir, "error.log"),
		"--pid-file=" + filepath.Join(s.proc.Dir, "mysqld.pid"), "--max-connections=600",
		"--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
		// A row-based binlog, for the change-stream tests (pool/changes): the app user may not
		// read it, so that other tests' pools fall back to max_age as they always did.
		// log_bin_trust_function_creators keeps CREATE FUNCTION and CREATE TRIGGER as they are
		// without a binlog (no DETERMINISTIC needed, no SUPER).
		"--log-bin=" + filepath.Join(s.dataDir(), "binlog"), "--binlog-format=ROW", "--server-id=1",
		"--log-bin-trust-function-creators=1"}
	if s.proc.Cred != nil {
		args = append(args, "--user=mysql")
	}
	if s.tls != nil {
		args = append(args, "--ssl-cert="+filepath.Join(s.proc.Dir, "server.crt"), "--ssl-key="+filepath.Join(s.proc.Dir, "server.key"))
	}
	return s.proc.Command(context.Background(), "mariadbd", args...)
}

func (s *Server) ping(ctx context.Context) error {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// setup creates the users and database the constants promise.
func (s *Server) setup(ctx context.Context) error {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return fmt.Errorf("mytest: %w", err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"CREATE DATABASE " + AppDB,
		"CREATE USER '" + AppUser + "'@'%' IDENTIFIED BY '" + AppPassword + "'",
		"GRANT ALL ON " + AppDB + ".* TO '" + AppUser + "'@'%'",
		"GRANT PROCESS ON *.* TO '" + AppUser + "'@'%'",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("mytest: setup: %s: %w", stmt, err)
		}
	}
	return nil
}

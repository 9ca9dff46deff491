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
// Concurrency: a Server's fields are read-only after Start; Stop may be called from any
// goroutine, any number of times.
package mytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
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

	dir    string
	cred   *syscall.Credential // nil when not root
	cmd    *exec.Cmd
	exited chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// Main starts a server, stores it in *srv, runs the package's tests and stops the server. It
// returns the exit code for os.Exit. A server that fails to start fails the package (it does
// not skip): CI must not pass without having run the integration tests.
func Main(m *testing.M, srv **Server) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Start creates a fresh server in a temporary directory, starts it and waits until it accepts
// connections. The caller must call Stop.
func Start(ctx context.Context) (*Server, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("mytest: %s not found (run ./scripts/test.sh, the README's test command, "+
				"which installs mariadb-server): %w", bin, err)
		}
	}
	s := &Server{Host: "127.0.0.1"}
	var err error
	if s.cred, err = runAs(); err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "mytest-"); err != nil {
		return nil, fmt.Errorf("mytest: %w", err)
	}
	if err := s.install(ctx); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		err = s.start(ctx)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 4 {
			break
		}
	}
	if err == nil {
		err = s.setup(ctx)
	}
	if err != nil {
		err = fmt.Errorf("%w\n--- tail of %s ---\n%s", err, s.logPath(), s.logTail())
		s.Stop()
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
func (s *Server) Socket() string { return filepath.Join(s.dir, "mysqld.sock") }

// RootDSN returns a data source name for root over the unix socket.
func (s *Server) RootDSN() string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = RootUser, "unix", s.Socket()
	return c.FormatDSN()
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil {
			select {
			case <-s.exited:
			default:
				s.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-s.exited:
				case <-time.After(10 * time.Second):
					s.cmd.Process.Kill()
					<-s.exited
				}
			}
		}
		if err := os.RemoveAll(s.dir); err != nil {
			s.stopErr = fmt.Errorf("mytest: %w", err)
		}
	})
	return s.stopErr
}

// runAs returns the credentials of user mysql when this process is root, else nil.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		return nil, fmt.Errorf("mytest: running as root needs a user named mysql to run the server: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("mytest: user mysql: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "error.log") }

func (s *Server) install(ctx context.Context) error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("mytest: %w", err)
		}
	}
	// A private tmpdir: with the default /tmp, installs running at the same time (other
	// packages' tests) have failed deleting each other's temporary tables.
	cmd := s.command(ctx, "mariadb-install-db", "--no-defaults", "--datadir="+s.dataDir(), "--tmpdir="+s.dir,
		"--auth-root-authentication-method=socket", "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mytest: mariadb-install-db: %w\n%s", err, out)
	}
	return nil
}

var errPortTaken = errors.New("mytest: port already in use")

func (s *Server) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port = port
	// Durability is off: the data is thrown away anyway. Not ctx: the server outlives Start.
	args := []string{"--no-defaults", "--datadir=" + s.dataDir(), "--tmpdir=" + s.dir, "--socket=" + s.Socket(),
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--log-error=" + s.logPath(),
		"--pid-file=" + filepath.Join(s.dir, "mysqld.pid"), "--max-connections=600",
		"--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"}
	if s.cred != nil {
		args = append(args, "--user=mysql")
	}
	s.cmd = s.command(context.Background(), "mariadbd", args...)
	if s.cmd.SysProcAttr == nil {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("mytest: start mariadbd: %w", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() { s.cmd.Wait(); close(exited) }()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		lastErr := s.ping(ctx)
		if lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			if strings.Contains(s.logTail(), "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("mytest: mariadbd exited during startup: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("mytest: mariadbd not accepting connections on port %d: %w (last try: %v)", port, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mytest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

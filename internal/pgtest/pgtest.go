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
// Concurrency: a Server's fields are read-only after Start; Stop may be called from any
// goroutine, any number of times.
package pgtest

import (
	"bytes"
	"context"
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

	"github.com/jackc/pgx/v5"
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

// pollInterval is how often Start retries connecting while the server boots.
const pollInterval = 50 * time.Millisecond

// defaultStartTimeout bounds Start when ctx has no deadline of its own.
const defaultStartTimeout = 60 * time.Second

// Server is a running PostgreSQL. Host and Port are its TCP address on loopback.
type Server struct {
	Host string
	Port int

	dir    string // temp dir: data/, postgres.log, the unix socket
	binDir string
	cred   *syscall.Credential // nil when not root
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been reaped

	stopOnce sync.Once
	stopErr  error
}

// Main starts a server, stores it in *srv, runs the package's tests and stops the server.
// It returns the exit code for os.Exit. A server that fails to start fails the package
// (it does not skip): CI must not pass without having run the integration tests.
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

// Start creates a fresh cluster in a temporary directory, starts it and waits until it accepts
// connections. The caller must call Stop. If ctx has no deadline, Start gives up after a minute.
func Start(ctx context.Context) (*Server, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	binDir := DefaultBinDir
	if v := os.Getenv("SLIPSTREAM_TEST_PG_BIN"); v != "" {
		binDir = v
	}
	if _, err := os.Stat(filepath.Join(binDir, "postgres")); err != nil {
		return nil, fmt.Errorf("pgtest: no PostgreSQL server binaries in %s (set SLIPSTREAM_TEST_PG_BIN, "+
			"or run ./scripts/test.sh, the README's test command, which installs postgresql-15): %w", binDir, err)
	}

	s := &Server{Host: "127.0.0.1", binDir: binDir}
	var err error
	if s.cred, err = runAs(); err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := s.initdb(ctx); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	// The free port we pick may be taken again before postgres binds it; try a few.
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
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil {
			s.stopErr = s.stopPostgres()
		}
		if err := os.RemoveAll(s.dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pgtest: %w", err)
		}
	})
	return s.stopErr
}

func (s *Server) stopPostgres() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	stop := s.command(context.Background(), "pg_ctl", "stop", "-D", s.dataDir(), "-m", "immediate", "-w")
	out, stopErr := stop.CombinedOutput()
	select {
	case <-s.exited:
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("pgtest: postgres ignored pg_ctl stop (%v: %s), killed it", stopErr, bytes.TrimSpace(out))
	}
}

// runAs returns the credentials of user postgres when this process is root, else nil.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a user named postgres to run the server: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// command prepares one of the PostgreSQL binaries to run as the server's user in its directory.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir // the caller's working directory may not be readable by postgres
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// hbaConf lets md5user in with md5 and everyone else with SCRAM, over loopback and the socket.
const hbaConf = `local all all scram-sha-256
host all md5user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
`

func (s *Server) initdb(ctx context.Context) error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := s.writeFile(pwfile, AdminPassword+"\n"); err != nil {
		return err
	}
	cmd := s.command(ctx, "initdb", "-D", s.dataDir(), "-U", AdminUser, "--pwfile", pwfile,
		"--auth=scram-sha-256", "--locale=C", "--encoding=UTF8", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return s.writeFile(filepath.Join(s.dataDir(), "pg_hba.conf"), hbaConf)
}

// writeFile writes a file the server's user can read.
func (s *Server) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	return nil
}

var errPortTaken = errors.New("pgtest: port already in use")

// start runs postgres on a free port and waits until it accepts connections.
func (s *Server) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port = port
	// Settings go on the command line so the cluster's files stay initdb's.
	// Durability is off: the data is thrown away anyway. Not ctx: the server outlives Start.
	s.cmd = s.command(context.Background(), "postgres", "-D", s.dataDir(),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		"-c", "password_encryption=scram-sha-256",
	)
	if s.cmd.SysProcAttr == nil {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// If the test binary dies (a -timeout panic), shut postgres down instead of orphaning it;
	// only the temp dir is left behind then.
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close() // the child holds its own copy
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() { s.cmd.Wait(); close(exited) }()

	tick := time.NewTicker(pollInterval)
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
			return fmt.Errorf("pgtest: postgres exited during startup: %v", s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not accepting connections on port %d: %w (last try: %v)", port, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
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

// freePort asks the kernel for a free loopback port. Another process may take it before
// postgres binds it; start detects that and the caller retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the end of postgres.log for error messages.
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

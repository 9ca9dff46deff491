package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/sysuser"
)

// Spec says how to run one kind of database server.
type Spec struct {
	Pkg     string // prefixes every error, e.g. "pgtest"; also names the temporary directory
	Program string // the server binary as errors name it, e.g. "postgres"
	User    string // whom the server runs as when this process is root

	// LogFile is the server's log in Dir; its tail goes into Start's errors. When CaptureOutput
	// is set the server's stdout and stderr are written there, otherwise the server writes it.
	LogFile       string
	CaptureOutput bool
	// Deathsig is what the server gets if the test binary dies (a -timeout panic), so that it
	// is not orphaned; only the directory is left behind then.
	Deathsig syscall.Signal

	Install func(ctx context.Context) error // prepares Dir, once, before the server first starts
	Server  func(port int) *exec.Cmd        // the server listening on port, built with Process.Command
	Ping    func(ctx context.Context) error // nil once the server accepts connections
	Setup   func(ctx context.Context) error // creates the users and databases, once ready
	// Shutdown asks the running server to exit; nil means SIGTERM. Its error says what the
	// server ignored, for Stop to report if it has to kill the server 10 s later.
	Shutdown func() error
}

// pollInterval is how often Start retries Ping while the server boots.
const pollInterval = 50 * time.Millisecond

// defaultStartTimeout bounds Start when ctx has no deadline of its own.
const defaultStartTimeout = time.Minute

// Process is a server run as Spec says. Set Spec, then call Start.
type Process struct {
	Spec
	Port int                 // its TCP port on 127.0.0.1
	Dir  string              // the temporary directory, removed by Stop
	Cred *syscall.Credential // Spec.User's when this process is root, else nil

	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been reaped

	stopOnce sync.Once
	stopErr  error
}

var errPortTaken = errors.New("port already in use")

// Start creates the directory, installs and starts the server and waits until it accepts
// connections and is set up. On error nothing is left running. If ctx has no deadline, Start
// gives up after a minute.
func (p *Process) Start(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	var err error
	if p.Cred, err = sysuser.Credential(p.User); err != nil {
		return fmt.Errorf("%s: %w", p.Pkg, err)
	}
	if p.Dir, err = os.MkdirTemp("", p.Pkg+"-"); err != nil {
		return fmt.Errorf("%s: %w", p.Pkg, err)
	}
	err = p.Chown(p.Dir)
	if err == nil {
		err = p.Install(ctx)
	}
	if err != nil {
		os.RemoveAll(p.Dir)
		return err
	}
	// The free port we pick may be taken again before the server binds it; try a few.
	for attempt := 0; ; attempt++ {
		err = p.start(ctx)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 4 {
			break
		}
	}
	if err == nil {
		err = p.Setup(ctx)
	}
	if err != nil {
		err = fmt.Errorf("%w\n--- tail of %s ---\n%s", err, p.logPath(), p.logTail())
		p.Stop()
		return err
	}
	return nil
}

// Command prepares path to run as the server's user in Dir.
func (p *Process) Command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = p.Dir // the caller's working directory may not be readable by the server's user
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.Cred}
	}
	return cmd
}

// Chown gives path to the server's user when this process is root.
func (p *Process) Chown(path string) error {
	if p.Cred == nil {
		return nil
	}
	if err := os.Chown(path, int(p.Cred.Uid), int(p.Cred.Gid)); err != nil {
		return fmt.Errorf("%s: %w", p.Pkg, err)
	}
	return nil
}

// Stop shuts the server down and removes the directory.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		if p.cmd != nil {
			p.stopErr = p.shutdown()
		}
		if err := os.RemoveAll(p.Dir); err != nil && p.stopErr == nil {
			p.stopErr = fmt.Errorf("%s: %w", p.Pkg, err)
		}
	})
	return p.stopErr
}

func (p *Process) shutdown() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	var ignored error
	if p.Shutdown != nil {
		ignored = p.Shutdown()
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		if ignored == nil {
			return nil
		}
		return fmt.Errorf("%s: %s ignored %w, killed it", p.Pkg, p.Program, ignored)
	}
}

// start runs the server on a free port and waits until it accepts connections.
func (p *Process) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("%s: %w", p.Pkg, err)
	}
	return p.startOn(ctx, port)
}

// startOn runs the server on port and waits until it accepts connections.
func (p *Process) startOn(ctx context.Context, port int) error {
	p.Port = port
	cmd := p.Server(port)
	p.cmd = cmd
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = p.Deathsig
	if p.CaptureOutput {
		logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Pkg, err)
		}
		defer logf.Close() // the child holds its own copy
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", p.Pkg, p.Program, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { cmd.Wait(); close(exited) }()

	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		lastErr := p.Ping(ctx)
		if lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			if strings.Contains(p.logTail(), "Address already in use") {
				return fmt.Errorf("%s: %w", p.Pkg, errPortTaken)
			}
			return fmt.Errorf("%s: %s exited during startup: %v", p.Pkg, p.Program, cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not accepting connections on port %d: %w (last try: %v)",
				p.Pkg, p.Program, port, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// freePort asks the kernel for a free loopback port. Another process may take it before the
// server binds it; start detects that and Start retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *Process) logPath() string { return filepath.Join(p.Dir, p.LogFile) }

// logTail returns the end of the server's log for error messages.
func (p *Process) logTail() string {
	b, err := os.ReadFile(p.logPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

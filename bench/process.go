package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a server the harness runs in the background (slipstream, PgBouncer,
// pgpool-II), its output in DIR/NAME.log.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's, valid after exited
}

// passFileLimit raises this process's open-file limit to its hard one, once, by setting it
// itself: Go raises the soft limit of its own process at start but gives the processes it
// starts the soft limit it started with (often 1024), unless the program has set the limit
// itself. The servers the harness starts (PgBouncer with 10,000 idle clients) need it.
var passFileLimit = sync.OnceFunc(func() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // on failure the children get what Go gives them
	}
})

// startProcess runs path with args in dir, as cred's user when not nil, with this process's
// open-file limit.
func startProcess(dir, name string, cred *syscall.Credential, path string, args ...string) (*process, error) {
	passFileLimit()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(path, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop sends sig and waits for the process, killing it after 5 s.
func (p *process) stop(sig os.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// logTail returns the last lines of p's log, passed through redact.
func (p *process) logTail(redact *strings.Replacer) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return redact.Replace(strings.Join(lines, "\n"))
}

// lostPortRace reports whether p has exited because its listening address was taken.
func (p *process) lostPortRace() bool {
	select {
	case <-p.exited:
	default:
		return false
	}
	b, _ := os.ReadFile(p.log)
	return strings.Contains(strings.ToLower(string(b)), "address already in use")
}

// waitReady retries a query through rawURL for up to 30 s, failing early if p exits.
// Errors and logs pass through redact, which hides the URL's password.
func waitReady(ctx context.Context, p *process, rawURL string, redact *strings.Replacer) error {
	c, err := newConnector(rawURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		select {
		case <-p.exited: // whatever answers on its address is not p
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.logTail(redact))
		default:
		}
		err := tryQuery(ctx, c)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.logTail(redact))
		case <-ctx.Done():
			return fmt.Errorf("%s not answering queries: %s; its log: %s",
				p.name, redact.Replace(err.Error()), p.logTail(redact))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tryQuery connects and runs SELECT 1, giving up after 2 s: a process that is not a
// database server may accept the connection and never answer.
func tryQuery(ctx context.Context, c connector) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return s.query(ctx, "SELECT 1")
}

// passwordHider returns a replacer that hides password in any of its URL spellings.
func passwordHider(password string) *strings.Replacer {
	if password == "" {
		return strings.NewReplacer()
	}
	return strings.NewReplacer(password, "xxxxx", url.QueryEscape(password), "xxxxx", url.PathEscape(password), "xxxxx")
}

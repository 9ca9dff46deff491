package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slipstream-proxy/slipstream/proxy"
)

// The upgrade that drops no client (SIGUSR2), the way pg_doorman and HAProxy's seamless reload
// do it, our own way: the running process starts the binary now installed at its path, with
// the same arguments and environment, and hands it, over a Unix socket (SCM_RIGHTS), first its
// listening sockets and then, one at a time as each reaches a request boundary, its idle
// client connections with their session state:
//
//	old (SIGUSR2)                                      new (SLIPSTREAM_HANDOVER_FD=3)
//	 │ socketpair; start the binary, fd 3 = one end ─>│
//	 │ {"kind":"listeners"} + the listening sockets ─>│ listens on those, not anew
//	 │                                                │ loads, serves: READY=1
//	 │<───────────────────────── {"kind":"ready"} ───│
//	 │ MAINPID=new to systemd; stops accepting and
//	 │ serving HTTP (the new process accepts on the same sockets);
//	 │ each movable session at its boundary:
//	 │ {"kind":"session"} + its connection ──────────>│ proxy.Server.Adopt: served on
//	 │ the others drain (57P01, 1053 at their boundary)│
//	 │ exits 0 when none is left (or shutdown_timeout)
//
// Which sessions move is proxy's decision (proxy/handover.go, handover_mysql.go): plaintext
// PostgreSQL and MySQL sessions idle between transactions, with no state on their origin
// connection. The new process that fails to start, or does not say ready within
// handoverTimeout, is killed and the old one goes on serving as before. Each message is one SOCK_SEQPACKET datagram, so its descriptors arrive
// with it; a session whose state is larger than a datagram (handoverMaxMessage) drains.

// handoverEnv names the descriptor on which a process started by a handover reads it.
const handoverEnv = "SLIPSTREAM_HANDOVER_FD"

const (
	handoverTimeout    = time.Minute
	handoverMaxMessage = 256 << 10 // above a Unix socket's default send buffer, which bounds a datagram
	handoverMaxFiles   = 8
)

// handoverMsg is one message of the handover.
type handoverMsg struct {
	Kind string `json:"kind"` // "listeners", "ready", "session"
	// Listeners name the listening sockets sent with the message, in order: their role and
	// configured address ("pg 127.0.0.1:5432").
	Listeners []string `json:"listeners,omitempty"`
	// PID is the new process's, with "ready".
	PID     int                  `json:"pid,omitempty"`
	Session *proxy.HandedSession `json:"session,omitempty"`
}

// handoverConn is one end of the handover's socket. send may be called from any goroutine,
// recv from one at a time.
type handoverConn struct {
	c        *net.UnixConn
	buf, oob []byte // recv's
}

func newHandoverConn(c *net.UnixConn) *handoverConn {
	return &handoverConn{c: c, buf: make([]byte, handoverMaxMessage), oob: make([]byte, unix.CmsgSpace(4*handoverMaxFiles))}
}

// send sends m with files (their descriptors are duplicated into the receiver).
func (h *handoverConn) send(m handoverMsg, files ...*os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	// The descriptors through SyscallConn: File.Fd would put them in blocking mode, and the
	// mode belongs to the socket, which this process and the other one share.
	var fds []int
	for _, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("handover: %w", err)
		}
		rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// The descriptors stay open until the message is sent (the files outlive this call).
	if _, _, err := h.c.WriteMsgUnix(b, oob, nil); err != nil {
		return fmt.Errorf("handover: send %s: %w", m.Kind, err)
	}
	return nil
}

// recv receives one message and the files that came with it.
func (h *handoverConn) recv() (handoverMsg, []*os.File, error) {
	var m handoverMsg
	buf, oob := h.buf, h.oob
	n, oobn, flags, _, err := h.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return m, nil, err
	}
	var files []*os.File
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cmsgs {
			fds, _ := unix.ParseUnixRights(&cm)
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "handover"))
			}
		}
	}
	if n == 0 && len(files) == 0 {
		return m, nil, errors.New("handover: the other process closed the socket")
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		closeFiles(files)
		return m, nil, errors.New("handover: a message was truncated")
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeFiles(files)
		return m, nil, fmt.Errorf("handover: %w", err)
	}
	return m, files, nil
}

func (h *handoverConn) close() { h.c.Close() }

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// successor is the new process of a handover, ready to serve.
type successor struct {
	conn   *handoverConn
	pid    int
	cmd    *exec.Cmd
	handed atomic.Int64 // sessions handed over
}

// upgrade is how starting a successor went.
type upgrade struct {
	s   *successor
	err error
}

// kill ends a successor that is not wanted any more.
func (s *successor) kill() {
	s.cmd.Process.Kill()
	s.conn.close()
}

// close closes this end of the handover's socket: the new process stops waiting for sessions.
func (s *successor) close() { s.conn.close() }

// handedListener is a listening socket, its role (pg, mysql, http) and the address it was
// configured with.
type handedListener struct {
	role, addr string
	ln         net.Listener
}

func (l handedListener) key() string { return l.role + " " + l.addr }

// startSuccessor starts the binary at this process's path as its successor, sends it the
// listeners and waits until it serves (or fails, or handoverTimeout passes: then it is
// killed).
func startSuccessor(ctx context.Context, listeners []handedListener) (*successor, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("handover: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("handover: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "handover"), os.NewFile(uintptr(fds[1]), "handover")
	defer theirs.Close()
	fc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("handover: %w", err)
	}
	conn := newHandoverConn(fc.(*net.UnixConn))

	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(withoutEnv(os.Environ(), handoverEnv), handoverEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		conn.close()
		return nil, fmt.Errorf("handover: start %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it should it end while this process runs
	fail := func(err error) (*successor, error) {
		cmd.Process.Kill()
		conn.close()
		return nil, err
	}

	msg := handoverMsg{Kind: "listeners"}
	var files []*os.File
	defer func() { closeFiles(files) }()
	for _, l := range listeners {
		f, err := l.ln.(interface{ File() (*os.File, error) }).File()
		if err != nil {
			return fail(fmt.Errorf("handover: listener %s: %w", l.addr, err))
		}
		files = append(files, f)
		msg.Listeners = append(msg.Listeners, l.key())
	}
	if err := conn.send(msg, files...); err != nil {
		return fail(err)
	}
	ready := make(chan error, 1)
	var pid int
	go func() {
		m, files, err := conn.recv()
		closeFiles(files)
		if err == nil && m.Kind != "ready" {
			err = fmt.Errorf("handover: the new process said %q, not ready", m.Kind)
		}
		pid = m.PID
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fail(err)
		}
		return &successor{conn: conn, pid: pid, cmd: cmd}, nil
	case err := <-exited:
		conn.close()
		return nil, fmt.Errorf("handover: the new process exited before serving: %v", err)
	case <-time.After(handoverTimeout):
		return fail(fmt.Errorf("handover: the new process did not serve within %v", handoverTimeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// handoff is proxy's Handoff to the successor.
func (s *successor) handoff(conn *os.File, h proxy.HandedSession) error {
	if err := s.conn.send(handoverMsg{Kind: "session", Session: &h}, conn); err != nil {
		return err
	}
	s.handed.Add(1)
	return nil
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// predecessor is the old process of a handover, seen from the new one: the socket and the
// listeners it sent.
type predecessor struct {
	conn      *handoverConn
	mu        sync.Mutex
	listeners map[string]*os.File // by handedListener.key, until taken
}

var inherited struct {
	once sync.Once
	p    *predecessor
}

// fromPredecessor returns the handover this process was started for, or nil. The first call
// reads the listeners the old process sent.
func fromPredecessor() *predecessor {
	inherited.once.Do(func() {
		v := os.Getenv(handoverEnv)
		if v == "" {
			return
		}
		os.Unsetenv(handoverEnv)
		fd, err := strconv.Atoi(v)
		if err != nil {
			return
		}
		f := os.NewFile(uintptr(fd), "handover")
		fc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return
		}
		p := &predecessor{conn: newHandoverConn(fc.(*net.UnixConn)), listeners: map[string]*os.File{}}
		p.conn.c.SetReadDeadline(time.Now().Add(handoverTimeout))
		m, files, err := p.conn.recv()
		p.conn.c.SetReadDeadline(time.Time{})
		if err != nil || m.Kind != "listeners" || len(files) != len(m.Listeners) {
			closeFiles(files)
			p.conn.close()
			return
		}
		for i, key := range m.Listeners {
			p.listeners[key] = files[i]
		}
		inherited.p = p
	})
	return inherited.p
}

// listener returns the old process's listener of role configured with addr, or nil.
func (p *predecessor) listener(role, addr string) (net.Listener, error) {
	if p == nil {
		return nil, nil
	}
	key := handedListener{role: role, addr: addr}.key()
	p.mu.Lock()
	f := p.listeners[key]
	delete(p.listeners, key)
	p.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	defer f.Close()
	return net.FileListener(f)
}

// adopt tells the old process this one serves, closes the listeners it sent that this one
// does not use (its configuration changed), and serves each session the old process hands
// over, until the old process closes the socket or ctx ends.
func (p *predecessor) adopt(ctx context.Context, lc *Lifecycle) error {
	p.mu.Lock()
	for key, f := range p.listeners {
		lc.log.Info("handover: not listening on the old process's address any more", "listener", key)
		f.Close()
	}
	clear(p.listeners)
	p.mu.Unlock()
	stop := context.AfterFunc(ctx, p.conn.close)
	defer stop()
	defer p.conn.close()
	if err := p.conn.send(handoverMsg{Kind: "ready", PID: os.Getpid()}); err != nil {
		lc.log.Warn("handover: telling the old process this one serves failed", "err", err)
		return nil
	}
	lc.log.Info("handover: serving in place of the old process")
	adopted := 0
	for {
		m, files, err := p.conn.recv()
		if err != nil {
			lc.log.Info("handover: the old process has handed over all it could", "sessions", adopted)
			return nil
		}
		if m.Kind != "session" || m.Session == nil || len(files) != 1 || lc.adopt == nil {
			closeFiles(files)
			continue
		}
		nc, err := net.FileConn(files[0])
		files[0].Close()
		if err != nil {
			lc.log.Warn("handover: a session's connection is unusable", "err", err)
			continue
		}
		if err := lc.adopt(ctx, nc, *m.Session); err != nil {
			lc.log.Warn("handover: a session could not be taken over; its client was told (57P01 / 1053)", "err", err)
			continue
		}
		adopted++
	}
}

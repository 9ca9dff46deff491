package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/slipstream-proxy/slipstream/internal/sysuser"
)

// Peers the throughput workload can run against in the same run, from Debian's packages,
// configured as scripts/bench-pgbench.sh does.
const (
	PgBouncer = "pgbouncer" // transaction pooling, default_pool_size 10
	Pgpool    = "pgpool"    // pgpool-II with its in-memory query cache
	HAProxy   = "haproxy"   // HAProxy in TCP mode: forwards bytes, parses nothing
)

// peerAddr picks the address a peer listens on; a test makes it return a taken one.
var peerAddr = func() (string, error) { return freeAddr("tcp") }

// Where Debian's pgbouncer and pgpool2 packages put the servers.
var peerBinary = map[string]string{PgBouncer: "/usr/sbin/pgbouncer", Pgpool: "/usr/sbin/pgpool", HAProxy: "/usr/sbin/haproxy"}

// Peers are PgBouncer or pgpool-II processes in front of one PostgreSQL database.
type Peers struct {
	// URLs maps each started peer's name to the URL that reaches the database through it,
	// with the database's credentials.
	URLs map[string]string
	// PIDs maps each started peer's name to its process.
	PIDs map[string]int

	dir   string
	procs []*process
}

// StartPeers starts each of names (PgBouncer, Pgpool) on a free loopback port in front of
// the PostgreSQL database at origin, which they reach with its URL's user and password.
// Close stops them.
func StartPeers(ctx context.Context, origin string, names []string) (_ *Peers, err error) {
	if p, err := ProtocolOf(origin); err != nil || p != Postgres {
		return nil, errors.New("peers: PgBouncer and pgpool-II need a postgres:// origin")
	}
	u, err := url.Parse(origin)
	if err != nil {
		return nil, errors.New("peers: origin is not a valid URL")
	}
	// PostgreSQL's user: PgBouncer and pgpool-II refuse to run as root.
	cred, err := sysuser.Credential("postgres")
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	ps := &Peers{URLs: map[string]string{}, PIDs: map[string]int{}}
	if ps.dir, err = os.MkdirTemp("", "slipstream-peers-"); err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	defer func() {
		if err != nil {
			ps.Close()
		}
	}()
	if cred != nil {
		if err := os.Chown(ps.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	pw, _ := u.User.Password()
	redact := passwordHider(pw)
	for _, name := range names {
		bin, ok := peerBinary[name]
		if !ok {
			return nil, fmt.Errorf("peers: unknown peer %q (known: %s, %s, %s)", name, PgBouncer, Pgpool, HAProxy)
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("peers: %s is not installed (%s; apt-get install %s)", name, bin, map[string]string{PgBouncer: "pgbouncer", Pgpool: "pgpool2", HAProxy: "haproxy"}[name])
		}
		if err := ps.start(ctx, name, u, cred, bin, redact); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// start runs one peer on a free loopback port and waits until it answers. The port is free
// when chosen but another process may bind it first (the tests run in parallel), so a peer
// that exits because its address is in use is started again on another port.
func (ps *Peers) start(ctx context.Context, name string, u *url.URL, cred *syscall.Credential, bin string, redact *strings.Replacer) error {
	for attempt := 1; ; attempt++ {
		listen, err := peerAddr()
		if err != nil {
			return err
		}
		var p *process
		switch name {
		case PgBouncer:
			p, err = ps.startPgBouncer(u, listen, cred, bin)
		case Pgpool:
			p, err = ps.startPgpool(u, listen, cred, bin)
		case HAProxy:
			p, err = ps.startHAProxy(u, listen, cred, bin)
		}
		if err != nil {
			return fmt.Errorf("peers: %s: %w", name, err)
		}
		ps.URLs[name] = withHost(u, listen)
		ps.PIDs[name] = p.cmd.Process.Pid
		err = waitReady(ctx, p, ps.URLs[name], redact)
		if err == nil {
			return nil
		}
		if attempt == 3 || !p.lostPortRace() {
			return fmt.Errorf("peers: %w", err)
		}
	}
}

// Close stops the peers and removes their directory.
func (ps *Peers) Close() error {
	for _, p := range ps.procs {
		p.stop(syscall.SIGINT)
	}
	ps.procs = nil
	if ps.dir != "" {
		os.RemoveAll(ps.dir)
		ps.dir = ""
	}
	return nil
}

// writeFile writes a file the servers' user may read and nobody else.
func (ps *Peers) writeFile(name, content string, cred *syscall.Credential) (string, error) {
	path := filepath.Join(ps.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", err
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	return path, nil
}

func (ps *Peers) startPgBouncer(origin *url.URL, listen string, cred *syscall.Credential, bin string) (*process, error) {
	host, port, _ := net.SplitHostPort(listen)
	oh, op := origin.Hostname(), origin.Port()
	if op == "" {
		op = "5432"
	}
	user := origin.User.Username()
	pw, _ := origin.User.Password()
	db := strings.TrimPrefix(origin.Path, "/")
	users, err := ps.writeFile("userlist.txt", fmt.Sprintf("%q %q\n", user, pw), cred)
	if err != nil {
		return nil, err
	}
	ini, err := ps.writeFile("pgbouncer.ini", fmt.Sprintf(`[databases]
%s = host=%s port=%s dbname=%s

[pgbouncer]
listen_addr = %s
listen_port = %s
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = transaction
default_pool_size = 10
max_client_conn = 20000
`, db, oh, op, db, host, port, users), cred)
	if err != nil {
		return nil, err
	}
	p, err := startProcess(ps.dir, PgBouncer, cred, bin, ini)
	if err != nil {
		return nil, err
	}
	ps.procs = append(ps.procs, p)
	return p, nil
}

func (ps *Peers) startPgpool(origin *url.URL, listen string, cred *syscall.Credential, bin string) (*process, error) {
	host, port, _ := net.SplitHostPort(listen)
	oh, op := origin.Hostname(), origin.Port()
	if op == "" {
		op = "5432"
	}
	pcp, err := freeAddr("tcp")
	if err != nil {
		return nil, err
	}
	_, pcpPort, _ := net.SplitHostPort(pcp)
	pw, _ := origin.User.Password()
	passwd, err := ps.writeFile("pool_passwd", fmt.Sprintf("%s:TEXT%s\n", origin.User.Username(), pw), cred)
	if err != nil {
		return nil, err
	}
	oiddir := filepath.Join(ps.dir, "oiddir")
	if err := os.MkdirAll(oiddir, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		os.Chown(oiddir, int(cred.Uid), int(cred.Gid))
	}
	conf, err := ps.writeFile("pgpool.conf", fmt.Sprintf(`backend_clustering_mode = 'raw'
listen_addresses = '%s'
port = %s
pcp_listen_addresses = ''
pcp_port = %s
unix_socket_directories = '%s'
pcp_socket_dir = '%s'
backend_hostname0 = '%s'
backend_port0 = %s
num_init_children = 32
max_pool = 4
enable_pool_hba = off
pool_passwd = '%s'
sr_check_period = 0
health_check_period = 0
load_balance_mode = off
memory_cache_enabled = on
memqcache_method = 'shmem'
memqcache_total_size = 64MB
memqcache_expire = 60
memqcache_oiddir = '%s'
logdir = '%s'
pid_file_name = '%s'
`, host, port, pcpPort, ps.dir, ps.dir, oh, op, passwd, oiddir, ps.dir, filepath.Join(ps.dir, "pgpool.pid")), cred)
	if err != nil {
		return nil, err
	}
	p, err := startProcess(ps.dir, Pgpool, cred, bin, "-n", "-f", conf, "-F", os.DevNull)
	if err != nil {
		return nil, err
	}
	ps.procs = append(ps.procs, p)
	return p, nil
}

func (ps *Peers) startHAProxy(origin *url.URL, listen string, cred *syscall.Credential, bin string) (*process, error) {
	op := origin.Port()
	if op == "" {
		op = "5432"
	}
	cfg, err := ps.writeFile("haproxy.cfg", fmt.Sprintf(`global
    maxconn 20000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen postgres
    bind %s
    server origin %s
`, listen, net.JoinHostPort(origin.Hostname(), op)), cred)
	if err != nil {
		return nil, err
	}
	p, err := startProcess(ps.dir, HAProxy, cred, bin, "-f", cfg, "-db")
	if err != nil {
		return nil, err
	}
	ps.procs = append(ps.procs, p)
	return p, nil
}

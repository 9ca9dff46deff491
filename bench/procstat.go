package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a proxy process costs, read from /proc (Linux only; elsewhere every figure is n/a).

// userHZ is the unit of /proc/PID/stat's utime and stime: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// processTree returns pid and its children: pgpool-II forks a process per client slot, so
// its cost is its tree's.
func processTree(pid int) []int {
	pids := []int{pid}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if f, err := procStatFields(child); err == nil && len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, child)
		}
	}
	return pids
}

// procStatFields returns the fields of /proc/PID/stat after the command name, so that
// field n of proc(5) (1-based, n >= 3) is at index n-3.
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// cpuTime returns the user + system CPU time pid and its children have used so far.
func cpuTime(pid int) (time.Duration, error) {
	var ticks int64
	for i, p := range processTree(pid) {
		f, err := procStatFields(p)
		if err != nil || len(f) < 13 {
			if i == 0 {
				return 0, fmt.Errorf("cpu time of process %d: %v", pid, err)
			}
			continue // a child that exited meanwhile
		}
		u, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
		s, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// ProcessCPU returns the user + system CPU time process pid and its children have used so
// far (/proc/PID/stat), for tests elsewhere that measure a server they started.
func ProcessCPU(pid int) (time.Duration, error) { return cpuTime(pid) }

// rssKiB returns the resident memory (VmRSS) of pid and its children, in KiB.
func rssKiB(pid int) (int64, error) {
	var total int64
	for i, p := range processTree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += n
			}
		}
	}
	return total, nil
}

// listenerPID returns the process listening on TCP addr (host:port) on this machine, found
// through /proc/net/tcp{,6} and the processes' descriptors (which needs the right to read
// them: the same user or root).
func listenerPID(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			// sl local_address rem_address st ... inode (field 10)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if n, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(n) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d here", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if target, err := os.Readlink(fd); err == nil && inodes[target] {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("no readable process holds the listener on port %d", port)
}

// syscallCount is what `strace -c -f` counted while attached to a process tree.
type syscallCount struct {
	Total int64
	Calls map[string]int64
}

// straceAttach attaches `strace -c -f` to pid and its children and returns once it is
// attached; stop detaches it and returns the counts. It fails when strace is not installed.
func straceAttach(ctx context.Context, pid int) (stop func() (syscallCount, error), err error) {
	bin, err := exec.LookPath("strace")
	if err != nil {
		return nil, errors.New("strace is not installed")
	}
	out, err := os.CreateTemp("", "slipstream-strace-")
	if err != nil {
		return nil, err
	}
	out.Close()
	args := []string{"-c", "-f", "-q", "-o", out.Name()}
	for _, p := range processTree(pid) {
		args = append(args, "-p", strconv.Itoa(p))
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.Remove(out.Name())
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	finish := func() (syscallCount, error) {
		defer os.Remove(out.Name())
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil && !strings.Contains(err.Error(), "interrupt") && stderr.Len() > 0 {
				return syscallCount{}, fmt.Errorf("strace: %v: %s", err, strings.TrimSpace(stderr.String()))
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			return syscallCount{}, errors.New("strace did not stop")
		}
		b, err := os.ReadFile(out.Name())
		if err != nil {
			return syscallCount{}, err
		}
		return parseStraceSummary(b)
	}
	// Attached once the traced process shows a tracer.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if i := bytes.Index(b, []byte("TracerPid:")); i >= 0 {
			if f := strings.Fields(string(b[i+len("TracerPid:"):])); len(f) > 0 && f[0] != "0" {
				return finish, nil
			}
		}
		select {
		case err := <-exited:
			os.Remove(out.Name())
			return nil, fmt.Errorf("strace exited (%v): %s", err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			finish()
			return nil, ctx.Err()
		case <-deadline:
			finish()
			return nil, errors.New("strace did not attach within 10 s")
		case <-tick.C:
		}
	}
}

// parseStraceSummary reads the table `strace -c` writes:
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 52.11    0.001234           2       600        12 read
//	...
//	100.00    0.002368                  1650        12 total
func parseStraceSummary(b []byte) (syscallCount, error) {
	c := syscallCount{Calls: map[string]int64{}}
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 4 || !strings.Contains(fs[0], ".") {
			continue
		}
		name := fs[len(fs)-1]
		if name == "total" { // its columns vary between versions; the rows add up to it
			found = true
			continue
		}
		n, err := strconv.ParseInt(fs[3], 10, 64)
		if err != nil {
			continue
		}
		c.Calls[name] = n
		c.Total += n
	}
	if !found {
		return c, errors.New("strace wrote no summary")
	}
	return c, nil
}

// perOp returns the commonest calls, at most n, each divided by ops, commonest first.
func (c syscallCount) perOp(ops int64, n int) []SyscallRate {
	var rs []SyscallRate
	for name, calls := range c.Calls {
		rs = append(rs, SyscallRate{Name: name, PerOp: round2(float64(calls) / float64(ops))})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].PerOp != rs[j].PerOp {
			return rs[i].PerOp > rs[j].PerOp
		}
		return rs[i].Name < rs[j].Name
	})
	return rs[:min(n, len(rs))]
}

// SyscallRate is how often a proxy made one system call per operation.
type SyscallRate struct {
	Name  string  `json:"name"`
	PerOp float64 `json:"per_op"`
}

package bench

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStraceSummary(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		total   int64
		calls   map[string]int64
		wantErr bool
	}{
		{name: "strace 6", in: `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 52.11    0.001234           2       600       200 read
 40.00    0.000900           1       400           write
  7.89    0.000100           0        50           epoll_pwait
------ ----------- ----------- --------- --------- ----------------
100.00    0.002234           2      1050       200 total
`, total: 1050, calls: map[string]int64{"read": 600, "write": 400, "epoll_pwait": 50}},
		{name: "total without usecs", in: `% time     seconds  usecs/call     calls    errors syscall
 100.00    0.000010           1        10           futex
100.00    0.000010                    10           total
`, total: 10, calls: map[string]int64{"futex": 10}},
		{name: "nothing traced", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseStraceSummary([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if c.Total != tt.total || len(c.Calls) != len(tt.calls) {
				t.Errorf("total %d calls %v, want %d %v", c.Total, c.Calls, tt.total, tt.calls)
			}
			for k, v := range tt.calls {
				if c.Calls[k] != v {
					t.Errorf("%s: %d, want %d", k, c.Calls[k], v)
				}
			}
		})
	}
	c := syscallCount{Total: 1050, Calls: map[string]int64{"read": 600, "write": 400, "epoll_pwait": 50}}
	if got := c.perOp(200, 2); len(got) != 2 || got[0] != (SyscallRate{"read", 3}) || got[1] != (SyscallRate{"write", 2}) {
		t.Errorf("perOp: %v, want read 3, write 2", got)
	}
}

// TestProcessCosts reads the costs of a real child process: its CPU time grows while it
// spins, its resident memory is positive, listenerPID finds this process by its listener,
// and strace (when installed) counts its system calls.
func TestProcessCosts(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// A shell that spins for a while, then sleeps until killed.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		cpu, err := cpuTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		if cpu > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the spinning child used no CPU time")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if kib, err := rssKiB(pid); err != nil || kib <= 0 {
		t.Errorf("rssKiB: %d, %v", kib, err)
	}
	if _, err := cpuTime(1 << 30); err == nil {
		t.Error("cpuTime of a process that does not exist: no error")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got, err := listenerPID(ln.Addr().String()); err != nil || got != os.Getpid() {
		t.Errorf("listenerPID(%s) = %d, %v; want this process, %d", ln.Addr(), got, err, os.Getpid())
	}
	ln.Close()
	if _, err := listenerPID(ln.Addr().String()); err == nil {
		t.Errorf("listenerPID of a closed listener: no error")
	}

	if _, err := exec.LookPath("strace"); err != nil {
		t.Log("strace not installed: syscall counting not checked")
		return
	}
	// A child that makes system calls on request: each line read is one read(2).
	cat := exec.Command("cat")
	in, _ := cat.StdinPipe()
	out, _ := cat.StdoutPipe()
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cat.Wait() })
	stop, err := straceAttach(ctx, cat.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 2)
	for range 10 { // each line echoed back before the next is sent: cat reads each on its own
		in.Write([]byte("x\n"))
		if _, err := io.ReadFull(out, echo); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if counts.Calls["read"] < 5 || counts.Total < counts.Calls["read"] {
		t.Errorf("strace counted %v (total %d), want at least 5 reads", counts.Calls, counts.Total)
	}
}

package bench

import (
	"os"
	"strings"
	"testing"
)

// TestStartProcessPassesFileLimit: a server the harness starts gets this process's open-file
// limit (the hard one), not the soft limit Go restores for the children it starts (run it
// under `ulimit -Sn 1024` to see the difference).
func TestStartProcessPassesFileLimit(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("no /proc")
	}
	p, err := startProcess(t.TempDir(), "limit", nil, "/bin/sh", "-c", "ulimit -n; ulimit -Hn")
	if err != nil {
		t.Fatal(err)
	}
	<-p.exited
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] != f[1] {
		t.Errorf("the child's soft and hard open-file limits: %q, want both the hard one", b)
	}
}

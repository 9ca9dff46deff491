package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
)

func TestRaiseFileLimit(t *testing.T) {
	tests := []struct {
		name          string
		cur, max      uint64
		getErr        error
		setErr        error
		want          uint64
		wantSet       bool
		wantLog       []string
		wantNotLogged string
	}{
		{name: "raised", cur: 1024, max: 524288, want: 524288, wantSet: true,
			wantLog: []string{"level=INFO", "open file limit raised", "soft=524288", "was=1024", "hard=524288"}},
		{name: "already at hard", cur: 20000, max: 20000, want: 20000,
			wantLog: []string{"level=DEBUG", "open file limit", "soft=20000", "hard=20000"}, wantNotLogged: "raised"},
		{name: "set refused", cur: 1024, max: 4096, setErr: syscall.EPERM, want: 1024, wantSet: true,
			wantLog: []string{"level=WARN", "cannot raise", "soft=1024", "hard=4096", "operation not permitted"}},
		{name: "get fails", getErr: errors.New("no such call"), want: 0,
			wantLog: []string{"level=WARN", "cannot read", "no such call"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var setCalled bool
			get := func(res int, l *syscall.Rlimit) error {
				if res != syscall.RLIMIT_NOFILE {
					t.Errorf("get resource %d, want RLIMIT_NOFILE", res)
				}
				l.Cur, l.Max = tt.cur, tt.max
				return tt.getErr
			}
			set := func(res int, l *syscall.Rlimit) error {
				setCalled = true
				if res != syscall.RLIMIT_NOFILE || l.Cur != tt.max || l.Max != tt.max {
					t.Errorf("set(%d, %+v), want RLIMIT_NOFILE soft=hard=%d", res, *l, tt.max)
				}
				return tt.setErr
			}
			if got := raiseFileLimitWith(log, get, set); got != tt.want {
				t.Errorf("limit %d, want %d", got, tt.want)
			}
			if setCalled != tt.wantSet {
				t.Errorf("setrlimit called %v, want %v", setCalled, tt.wantSet)
			}
			out := buf.String()
			if n := strings.Count(out, "\n"); n != 1 {
				t.Errorf("%d log lines, want 1: %q", n, out)
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(out, w) {
					t.Errorf("log %q lacks %q", out, w)
				}
			}
			if tt.wantNotLogged != "" && strings.Contains(out, tt.wantNotLogged) {
				t.Errorf("log %q has %q", out, tt.wantNotLogged)
			}
		})
	}
}

// TestRaiseFileLimitReal runs the real calls: afterwards the soft limit is the hard one.
func TestRaiseFileLimitReal(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	var buf bytes.Buffer
	got := RaiseFileLimit(slog.New(slog.NewTextHandler(&buf, nil)))
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if got != after.Cur || after.Cur != before.Max {
		t.Errorf("returned %d, soft limit now %d, hard %d: want all equal to the hard limit; log %q", got, after.Cur, before.Max, buf.String())
	}
}

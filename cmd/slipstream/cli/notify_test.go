package cli

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestNotifierSendsDatagramsToNOTIFY_SOCKET(t *testing.T) {
	for _, tt := range []struct{ name, env, listen string }{
		{"a socket file", "", ""},
		{"an abstract socket (@)", "@slipstream-notify-test-" + strconv.Itoa(os.Getpid()), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, listen := tt.env, "\x00"+strings.TrimPrefix(tt.env, "@")
			if env == "" {
				env = filepath.Join(t.TempDir(), "notify.sock")
				listen = env
			}
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: listen, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			t.Setenv("NOTIFY_SOCKET", env)
			n := newNotifier()
			for _, msg := range []string{"READY=1", reloading(), "STOPPING=1"} {
				if err := n.send(msg); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 256)
				k, err := conn.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				if got := string(buf[:k]); got != msg {
					t.Errorf("received %q, want %q", got, msg)
				}
			}
		})
	}
	t.Run("without NOTIFY_SOCKET nothing is sent", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		if n := newNotifier(); n != nil || n.send("READY=1") != nil {
			t.Error("a notifier without NOTIFY_SOCKET")
		}
	})
	if m := reloading(); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(m, "=0") {
		t.Errorf("reloading() = %q, want RELOADING=1 and the monotonic clock", m)
	}
}

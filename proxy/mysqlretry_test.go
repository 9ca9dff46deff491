package proxy

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

// What SET NAMES or SET CHARACTER SET chose is said again to a new pool side only when it reads
// back plainly.
func TestRestorableNames(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"", true},
		{"SET NAMES utf8mb4", true},
		{"SET NAMES 'latin1' COLLATE 'latin1_bin'", true},
		{"SET CHARACTER SET utf8mb4", true},
	} {
		names := ""
		if c.sql != "" {
			names = classify.ClassifyMySQLSession(c.sql).Names
		}
		if got := restorable(names); got != c.want {
			t.Errorf("%q (%q): restorable %v, want %v", c.sql, names, got, c.want)
		}
	}
	for _, names := range []string{"setnames a'b", `setnames a\b`, "setcharset x y", "setnames", "   ", "setrole x"} {
		if restorable(names) {
			t.Errorf("%q: restorable, want not", names)
		}
	}
}

package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// writeTOML writes a config file, readable by its owner only, and returns its path.
func writeTOML(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slipstream.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstream-proxy/slipstream/config"
)

func TestReadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(secret+"\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		name       string
		db         config.Database
		wantOrigin string
		wantErr    string
	}{
		{"an origin without a password gets the file's", config.Database{Origin: "postgres://app@h/db", PasswordFile: pw},
			"postgres://app:" + secret + "@h/db", ""},
		{"an origin with a password keeps it", config.Database{Origin: "postgres://app:other@h/db", PasswordFile: pw},
			"postgres://app:other@h/db", ""},
		{"a missing file is an error naming it", config.Database{Origin: "postgres://app@h/db", PasswordFile: filepath.Join(dir, "nope")},
			"", "nope"},
		{"an empty file is an error", config.Database{Origin: "postgres://app@h/db", PasswordFile: empty}, "", "is empty"},
		{"password and password_file together are an error", config.Database{Origin: "postgres://app@h/db", Password: "x", PasswordFile: pw},
			"", "both set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Config{Databases: []config.Database{tt.db}}
			err := c.ReadSecretFiles()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), secret) {
					t.Fatalf("err %v, want one saying %q and no secret", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := c.Databases[0]; d.Password != secret || d.Origin != tt.wantOrigin {
				t.Errorf("password %q origin %q, want the file's password and origin %q", d.Password, d.Origin, tt.wantOrigin)
			}
		})
	}
}

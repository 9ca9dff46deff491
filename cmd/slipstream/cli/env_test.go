package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlagEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"pg-listen":          "SLIPSTREAM_PG_LISTEN",
		"origin":             "SLIPSTREAM_ORIGIN",
		"api-token":          "SLIPSTREAM_API_TOKEN",
		"shutdown-min-delay": "SLIPSTREAM_SHUTDOWN_MIN_DELAY",
	} {
		if got := flagEnvName(flagName); got != want {
			t.Errorf("flagEnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func TestParseServeFromEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, pg, http string, origins []string)
	}{
		{
			name: "a variable sets its flag",
			env:  map[string]string{"SLIPSTREAM_PG_LISTEN": "127.0.0.1:7001", "SLIPSTREAM_HTTP_LISTEN": "127.0.0.1:7002"},
			check: func(t *testing.T, pg, http string, _ []string) {
				if pg != "127.0.0.1:7001" || http != "127.0.0.1:7002" {
					t.Errorf("pg_listen %q http_listen %q, want the variables'", pg, http)
				}
			},
		},
		{
			name: "the command line wins over the variable",
			env:  map[string]string{"SLIPSTREAM_PG_LISTEN": "127.0.0.1:7001"},
			args: []string{"--pg-listen", "127.0.0.1:7003"},
			check: func(t *testing.T, pg, _ string, _ []string) {
				if pg != "127.0.0.1:7003" {
					t.Errorf("pg_listen %q, want the flag's", pg)
				}
			},
		},
		{
			name: "a repeatable flag's variable holds several values separated by spaces",
			env:  map[string]string{"SLIPSTREAM_ORIGIN": "postgres://a:pw@h/one  postgres://b:pw@h/two"},
			check: func(t *testing.T, _, _ string, origins []string) {
				if strings.Join(origins, " ") != "one two" {
					t.Errorf("databases %v, want one and two", origins)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := parseServe(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, d := range cfg.Databases {
				names = append(names, d.Name)
			}
			tt.check(t, cfg.PGListen, cfg.HTTPListen, names)
		})
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	pwFile, tokFile := filepath.Join(dir, "pw"), filepath.Join(dir, "token")
	os.WriteFile(pwFile, []byte(secretPW+"\n"), 0o600)
	os.WriteFile(tokFile, []byte("tok-123\n"), 0o600)
	path := writeTOML(t, `api_token_file = "`+tokFile+`"
[[database]]
origin = "postgres://app@db.example.com:5432/app"
password_file = "`+pwFile+`"
`)
	cfg, err := parseServe([]string{"--config", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Databases[0]
	if cfg.APIToken != "tok-123" || d.Password != secretPW || d.OriginURL() != "postgres://app:"+secretPW+"@db.example.com:5432/app" {
		t.Errorf("api token %q, password %q, origin %q: want the files' contents, the origin with the password", cfg.APIToken, d.Password, d.OriginURL())
	}

	missing := writeTOML(t, `[[database]]
origin = "postgres://app@db.example.com:5432/app"
password_file = "`+filepath.Join(dir, "nope")+`"
`)
	_, err = parseServe([]string{"--config", missing}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "password_file") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing password file: %v, want an error naming the setting and the file", err)
	}

	both := writeTOML(t, `[[database]]
origin = "postgres://app@db.example.com:5432/app"
password = "`+secretPW+`"
password_file = "`+pwFile+`"
`)
	_, err = parseServe([]string{"--config", both}, io.Discard)
	if err == nil || strings.Contains(err.Error(), secretPW) {
		t.Errorf("password and password_file both set: %v, want an error without the password", err)
	}
}

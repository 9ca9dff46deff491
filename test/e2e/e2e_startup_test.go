package e2e

// Startup as PostgreSQL: refusals, over TLS when TLS was set up, and startup settings, seen by
// psql exactly as it sees them direct.

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPsqlSeesStartupRefusalsAsDirect(t *testing.T) {
	t.Parallel()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql: %v (./scripts/test.sh installs postgresql-client-15)", err)
	}
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	withDB := func(raw, db string, kv ...string) string {
		u, err := url.Parse(withQuery(raw, kv...))
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + db
		return u.String()
	}
	tests := []struct {
		name string
		db   string
		env  []string
		want string
	}{
		{"an unknown database over TLS", "nosuchdb", nil, `database "nosuchdb" does not exist`},
		{"an unknown startup parameter over TLS", "app", []string{"PGOPTIONS=-c no_such_parameter=1"},
			`unrecognized configuration parameter "no_such_parameter"`},
		{"a bad value of a real parameter over TLS", "app", []string{"PGOPTIONS=-c work_mem=lots"},
			`invalid value for parameter "work_mem": "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range []struct{ name, url, mode string }{
				{"slipstream", inst.PGURL, "require"}, {"postgresql", directURL(), "disable"}} {
				out, err := runTool(ctx, t, tt.env, t.TempDir(), psql,
					withDB(target.url, tt.db, "sslmode", target.mode), "-X", "-c", "select 1")
				if err == nil {
					t.Fatalf("%s: psql connected:\n%s", target.name, out)
				}
				if !strings.Contains(out, tt.want) || strings.Contains(out, "SSL error") {
					t.Errorf("%s: psql said:\n%s\nwant it to say %s", target.name, out, tt.want)
				}
			}
		})
	}
}

func TestPsqlStartupSettingsAsDirect(t *testing.T) {
	t.Parallel()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql: %v", err)
	}
	ctx := testContext(t, 60*time.Second)
	inst := startServe(t)
	env := []string{"PGOPTIONS=-c work_mem=3MB -c application_name=fromoptions"}
	q := "select current_setting('work_mem') || ' ' || current_setting('application_name')"
	for _, app := range []string{"explicit", ""} {
		var want string
		for _, u := range []string{directURL(), inst.plainURL()} {
			out, err := runTool(ctx, t, append(env, "PGAPPNAME="+app), t.TempDir(), psql, u, "-X", "-A", "-t", "-c", q)
			if err != nil {
				t.Fatalf("psql %s: %v\n%s", u, err, out)
			}
			if want == "" {
				want = out
				continue
			}
			if out != want {
				t.Errorf("PGAPPNAME=%q: through slipstream %q, direct %q", app, out, want)
			}
		}
	}
}

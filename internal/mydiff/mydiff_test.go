package mydiff

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

var srv *mytest.Server

func TestMain(m *testing.M) { os.Exit(mytest.Main(m, &srv)) }

func TestEveryScriptParses(t *testing.T) {
	scripts, err := Scripts()
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) < 30 {
		t.Errorf("%d scripts, want dozens", len(scripts))
	}
	for _, s := range scripts {
		if len(s.Steps) == 0 {
			t.Errorf("script %s has no steps", s.Name)
		}
	}
}

func TestParseRefusesWhatItCannotRun(t *testing.T) {
	for _, text := range []string{"bogus 1", "caps multi_statements", "caps +nope", "prepare", "fetch s",
		"execute", "query SELECT {{repeat \"x\" -1}}", "query {{repeat x", "execute s 'open"} {
		s, err := Parse("bad", text)
		if err == nil {
			// A step that parses must fail when its arguments are encoded.
			r := &runner{stmts: map[string]*stmtInfo{}}
			_, _, err = r.command(s.Steps[0])
		}
		if err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}

// TestScriptsAnswerTheSameTwiceDirect runs every script twice against MariaDB itself: the
// transcripts must match, or a script depends on something other than what it sends (and
// would report differences that are not Slipstream's).
func TestScriptsAnswerTheSameTwiceDirect(t *testing.T) {
	scripts, err := Scripts()
	if err != nil {
		t.Fatal(err)
	}
	o := Options{User: mytest.AppUser, Password: mytest.AppPassword, DB: mytest.AppDB}
	root, err := sql.Open("mysql", srv.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Exec("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024"); err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			a, err := Run(ctx, srv.Addr(), o, s)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Run(ctx, srv.Addr(), o, s)
			if err != nil {
				t.Fatal(err)
			}
			if d := Compare(a, b); len(d) > 0 {
				t.Errorf("two direct runs differ:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

func TestGenerateMakesScriptsOfAFixedLength(t *testing.T) {
	for _, in := range [][]byte{nil, {0}, {0xff, 13, 1, 2, 3}, []byte("the quick brown fox jumps over the lazy dog")} {
		s := Generate(in)
		if len(s.Steps) != GeneratedSteps {
			t.Errorf("Generate(%q) made %d steps, want %d", in, len(s.Steps), GeneratedSteps)
		}
		if again := Generate(in); len(again.Steps) != len(s.Steps) || again.Steps[3].Text != s.Steps[3].Text {
			t.Errorf("Generate(%q) is not deterministic", in)
		}
	}
}

package mysqlserver

import "testing"

func TestRewriteSeesPlaceholdersAndLiteralsOnly(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"placeholders are numbered", "SELECT ? + ?", "SELECT P1 + P2"},
		{"a ? in a string, an identifier or a comment is text", "SELECT '?', `?`, \"?\" /* ? */ -- ?\n, ? # ?", "SELECT S('?'), `?`, S(\"?\") /* ? */ -- ?\n, P1 # ?"},
		{"a doubled quote stays in the string", "SELECT 'it''s', ?", "SELECT S('it''s'), P1"},
		{"a backslash escapes nothing", `SELECT 'a\', ?`, `SELECT S('a\'), P1`},
		{"_binary and X'' are binary", "SELECT _binary'a', X'6162', _utf8mb4'c'", "SELECT B(a), B(ab), S(_utf8mb4'c')"},
		{"an executable comment's content is read, its markers kept", "/*!40101 SET x = ? */", "/*!40101 SET x = P1 */"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			got := Rewrite(tc.in, func(tok Token) (string, bool) {
				switch tok.Kind {
				case Param:
					n++
					return "P" + string(rune('0'+n)), true
				case String:
					if tok.Binary {
						return "B(" + string(tok.Value) + ")", true
					}
					return "S(" + tok.Text + ")", true
				}
				return "", false
			})
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLikeMatchesMySQLPatterns(t *testing.T) {
	for _, tc := range []struct {
		s, p string
		want bool
	}{
		{"sql_mode", "%", true},
		{"sql_mode", "sql%", true},
		{"sql_mode", "sql\\_mode", true},
		{"sqlxmode", "sql\\_mode", false},
		{"sql_mode", "s_l_mode", true},
		{"sql_mode", "%mode", true},
		{"sql_mode", "%mod", false},
		{"", "%", true},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b", false},
	} {
		if got := like(tc.s, tc.p); got != tc.want {
			t.Errorf("like(%q, %q) = %v, want %v", tc.s, tc.p, got, tc.want)
		}
	}
}

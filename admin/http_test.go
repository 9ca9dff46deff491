package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOffLoopbackTheDashboardAndAPINeedTheAdminPassword(t *testing.T) {
	c := New(Config{AdminUsers: []string{"ops"}, StatsUsers: []string{"dd"}, Password: "pw"})
	mux := http.NewServeMux()
	for _, p := range []string{"/{$}", "/api/overview", "/debug/pprof/", "/metrics", "/healthz"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	}
	guarded := c.Protect(mux, false)
	for _, tc := range []struct {
		path, user, pass string
		want             int
	}{
		{"/", "", "", http.StatusUnauthorized},
		{"/api/overview", "ops", "wrong", http.StatusUnauthorized},
		{"/api/overview", "nobody", "pw", http.StatusUnauthorized},
		{"/api/overview", "ops", "pw", http.StatusOK},
		{"/", "dd", "pw", http.StatusOK},
		{"/debug/pprof/", "", "", http.StatusUnauthorized},
		{"/metrics", "", "", http.StatusOK},
		{"/healthz", "", "", http.StatusOK},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.user != "" {
			r.SetBasicAuth(tc.user, tc.pass)
		}
		w := httptest.NewRecorder()
		guarded.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s as %q: %d, want %d", tc.path, tc.user, w.Code, tc.want)
		}
	}
	// On loopback nothing is asked; with no password nothing is let in off loopback.
	r := httptest.NewRequest("GET", "/api/overview", nil)
	w := httptest.NewRecorder()
	c.Protect(mux, true).ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("loopback: %d", w.Code)
	}
	open := New(Config{AdminUsers: []string{"ops"}})
	r = httptest.NewRequest("GET", "/api/overview", nil)
	r.SetBasicAuth("ops", "")
	w = httptest.NewRecorder()
	open.Protect(mux, false).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no password set, off loopback: %d, want 401", w.Code)
	}
}

func TestConsoleCredentials(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		user      string
		wantPW    string
		wantTrust bool
		wantOK    bool
	}{
		{"an admin logs in with the password", Config{AdminUsers: []string{"ops"}, Password: "pw"}, "ops", "pw", false, true},
		{"a stats user too", Config{StatsUsers: []string{"dd"}, Password: "pw"}, "dd", "pw", false, true},
		{"another user may not", Config{AdminUsers: []string{"ops"}, Password: "pw"}, "app", "", false, false},
		{"no password on loopback: trusted", Config{AdminUsers: []string{"ops"}, Trust: true}, "ops", "", true, true},
		{"no password off loopback: refused", Config{AdminUsers: []string{"ops"}}, "ops", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw, trust, ok := New(tc.cfg).Credentials(tc.user)
			if pw != tc.wantPW || trust != tc.wantTrust || ok != tc.wantOK {
				t.Errorf("Credentials(%q) = %q, %v, %v", tc.user, pw, trust, ok)
			}
		})
	}
}

func TestRowsAreEncodedAsPgBouncerDoes(t *testing.T) {
	row := appendDataRow(nil, "a", 5, int64(-1), null{}, true, 1.5)
	want := "D\x00\x00\x00\x26\x00\x06" + "\x00\x00\x00\x01a" + "\x00\x00\x00\x015" + "\x00\x00\x00\x02-1" +
		"\xff\xff\xff\xff" + "\x00\x00\x00\x011" + "\x00\x00\x00\x031.5"
	if string(row) != want {
		t.Errorf("DataRow %q, want %q", row, want)
	}
	desc := appendRowDescription(nil, cols("siqN", "a", "b", "c", "d"))
	if desc[0] != 'T' || desc[6] != 4 {
		t.Errorf("RowDescription %q", desc)
	}
}

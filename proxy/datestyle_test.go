package proxy

import "testing"

func TestDateStyleIsReportedInPostgreSQLsCanonicalForm(t *testing.T) {
	tests := []struct {
		v, cur, want string
		ok           bool
	}{
		{"German", "ISO, MDY", "German, DMY", true},
		{"German, YMD", "ISO, MDY", "German, YMD", true},
		{"ISO", "SQL, DMY", "ISO, DMY", true},
		{"euro", "ISO, MDY", "ISO, DMY", true},
		{"postgres, us", "ISO, DMY", "Postgres, MDY", true},
		{"ISO, SQL", "ISO, MDY", "", false},
		{"nonsense", "ISO, MDY", "", false},
	}
	for _, tt := range tests {
		got, ok := canonicalDateStyle(tt.v, tt.cur)
		if got != tt.want || ok != tt.ok {
			t.Errorf("canonicalDateStyle(%q, %q) = %q, %v; want %q, %v", tt.v, tt.cur, got, ok, tt.want, tt.ok)
		}
	}
}

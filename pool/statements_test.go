package pool

import (
	"bytes"
	"testing"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// errorBody builds an ErrorResponse body from field type and value pairs.
func errorBody(fields ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(fields); i += 2 {
		b = append(append(append(b, fields[i][0]), fields[i+1]...), 0)
	}
	return append(b, 0)
}

func TestStaleStatementErrorsMoveTheGenerationOn(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		stale bool
	}{
		{"cached plan must not change result type", errorBody("S", "ERROR", "C", "0A000", "M", "cached plan must not change result type"), true},
		{"cache lookup failed", errorBody("S", "ERROR", "C", "XX000", "M", "cache lookup failed for type 16457"), true},
		{"another internal error", errorBody("S", "ERROR", "C", "XX000", "M", "something else"), false},
		{"division by zero", errorBody("S", "ERROR", "C", "22012", "M", "division by zero"), false},
		{"a truncated body", []byte("SERR"), false},
	}
	for _, tt := range tests {
		if got := staleStatement(tt.body); got != tt.stale {
			t.Errorf("%s: staleStatement = %v, want %v", tt.name, got, tt.stale)
		}
	}
}

func TestErrorsQuoteTheClientsStatementName(t *testing.T) {
	body := errorBody("S", "ERROR", "C", "42P05", "M", `prepared statement "ss_0123" already exists`)
	got := renameError(nil, body, "ss_0123", "s1")
	want := pgwire.AppendFrame(nil, 'E', errorBody("S", "ERROR", "C", "42P05", "M", `prepared statement "s1" already exists`))
	if !bytes.Equal(got, want) {
		t.Errorf("renameError = %q\nwant %q", got, want)
	}
	if got := renameError(nil, body, "", ""); !bytes.Equal(got, pgwire.AppendFrame(nil, 'E', body)) {
		t.Errorf("without names the error must pass unchanged: %q", got)
	}
}

func TestARefusedSettingBecomesFatal(t *testing.T) {
	frame := pgwire.AppendFrame(nil, 'E', errorBody("S", "ERROR", "V", "ERROR", "C", "42704", "M", `unrecognized configuration parameter "x"`))
	want := pgwire.AppendFrame(nil, 'E', errorBody("S", "FATAL", "V", "FATAL", "C", "42704", "M", `unrecognized configuration parameter "x"`))
	if got := fatalError(frame); !bytes.Equal(got, want) {
		t.Errorf("fatalError = %q\nwant %q", got, want)
	}
}

func TestServerNamesDependOnTextGenerationAndSettings(t *testing.T) {
	base := serverName([]byte("SELECT 1\x00\x00\x00"), 0, "")
	for name, other := range map[string]string{
		"another generation": serverName([]byte("SELECT 1\x00\x00\x00"), 1, ""),
		"other settings":     serverName([]byte("SELECT 1\x00\x00\x00"), 0, "RESET ALL;SET search_path TO a\n;"),
		"another text":       serverName([]byte("SELECT 2\x00\x00\x00"), 0, ""),
	} {
		if other == base {
			t.Errorf("%s: the same server name %s", name, base)
		}
	}
	if again := serverName([]byte("SELECT 1\x00\x00\x00"), 0, ""); again != base {
		t.Errorf("the same statement got two names: %s, %s", base, again)
	}
}

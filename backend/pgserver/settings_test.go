package pgserver

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func newSettings(startup map[string]string) (*Conn, *Settings) {
	c := &Conn{}
	c.Settings.init(c, &Config{Name: "test", ServerVersion: "15.0 (test)", Settings: map[string]string{"lock_timeout": "0"}}, startup)
	return c, &c.Settings
}

func TestSettingsStartFromPostgresDefaultsTheBackendsAndTheStartupPacket(t *testing.T) {
	_, st := newSettings(map[string]string{"user": "u", "database": "d", "application_name": "app",
		"client_encoding": "LATIN1", "server_version": "99", "DateStyle": "German"})
	for name, want := range map[string]string{
		"server_version":        "15.0 (test)", // not the client's to choose
		"client_encoding":       "UTF8",        // a conversion no backend does
		"application_name":      "app",
		"datestyle":             "German",
		"DateStyle":             "German",
		"session_authorization": "u",
		"lock_timeout":          "0",
	} {
		if got, ok := st.Get(name); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := st.Get("database"); ok {
		t.Error("the startup packet's database became a setting")
	}
}

func TestSettingsSetResetAndReport(t *testing.T) {
	tests := []struct {
		name        string
		set         [2]string
		wantErr     string // SQLSTATE
		wantValue   string
		wantsReport bool
	}{
		{"a reported parameter that changes is reported", [2]string{"TimeZone", "Europe/Paris"}, "", "Europe/Paris", true},
		{"an unreported parameter is kept silently", [2]string{"search_path", "app"}, "", "app", false},
		{"a custom parameter is kept", [2]string{"my.tag", "x"}, "", "x", false},
		{"client_encoding accepts only UTF8's spellings", [2]string{"client_encoding", "latin1"}, CodeFeatureNotSupported, "", false},
		{"client_encoding UTF-8 is kept as UTF8", [2]string{"client_encoding", "'utf-8'"}, "", "UTF8", false},
		{"standard_conforming_strings off is refused", [2]string{"standard_conforming_strings", "off"}, CodeFeatureNotSupported, "", false},
		{"a fixed parameter can't change", [2]string{"server_version", "16"}, CodeCantChangeParam, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, st := newSettings(map[string]string{"user": "u"})
			err := st.Set(tt.set[0], tt.set[1])
			if tt.wantErr != "" {
				if e, ok := err.(*Error); !ok || e.Code != tt.wantErr {
					t.Fatalf("Set = %v, want SQLSTATE %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := st.Get(tt.set[0]); got != tt.wantValue {
				t.Errorf("Get = %q, want %q", got, tt.wantValue)
			}
			if reported := len(c.Out) > 0 && c.Out[0] == 'S'; reported != tt.wantsReport {
				t.Errorf("ParameterStatus sent: %v, want %v", reported, tt.wantsReport)
			}
			c.Out = c.Out[:0]
			st.ResetAll()
			if _, ok := st.Get("my.tag"); ok {
				t.Error("RESET ALL kept a custom parameter")
			}
			if got, _ := st.Get("timezone"); got != "UTC" {
				t.Errorf("after RESET ALL timezone = %q", got)
			}
			if tt.wantsReport {
				var m pgproto3.ParameterStatus
				if len(c.Out) < 5 || c.Out[0] != 'S' || m.Decode(c.Out[5:]) != nil || m.Name != "TimeZone" || m.Value != "UTC" {
					t.Errorf("RESET ALL reported %q", c.Out)
				}
			}
		})
	}
}

func TestBindIsCheckedAgainstTheStatement(t *testing.T) {
	tests := []struct {
		name string
		m    pgproto3.Bind
		ok   bool
	}{
		{"matching counts", pgproto3.Bind{Parameters: [][]byte{{'1'}}, ResultFormatCodes: []int16{1, 0}}, true},
		{"one format for all", pgproto3.Bind{Parameters: [][]byte{{'1'}}, ParameterFormatCodes: []int16{1}, ResultFormatCodes: []int16{1}}, true},
		{"too few parameters", pgproto3.Bind{}, false},
		{"parameter formats that don't match the parameters", pgproto3.Bind{Parameters: [][]byte{{'1'}}, ParameterFormatCodes: []int16{0, 0}}, false},
		{"result formats that don't match the columns", pgproto3.Bind{Parameters: [][]byte{{'1'}}, ResultFormatCodes: []int16{0, 0, 0}}, false},
		{"a format code that isn't text or binary", pgproto3.Bind{Parameters: [][]byte{{'1'}}, ParameterFormatCodes: []int16{2}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBind(&tt.m, 1, 2)
			if (err == nil) != tt.ok {
				t.Fatalf("checkBind = %v, want ok %v", err, tt.ok)
			}
			if e, isErr := err.(*Error); err != nil && (!isErr || e.Code != CodeProtocolViolation) {
				t.Errorf("checkBind = %#v, want 08P01", err)
			}
		})
	}
}

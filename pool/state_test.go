package pool

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

func TestStartupSettings(t *testing.T) {
	profile := map[string]string{"client_encoding": "UTF8", "DateStyle": "ISO, MDY", "application_name": "slipstream"}
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"a client repeating the origin's values needs no setup but its own empty application name",
			map[string]string{"user": "app", "database": "app", "client_encoding": "UTF8", "application_name": "slipstream"}, ""},
		{"a client without an application name has an empty one, as on a direct connection",
			map[string]string{"user": "app", "database": "app"},
			"RESET ALL;SELECT pg_catalog.set_config('application_name','',false);"},
		{"an explicit parameter wins over the same one in options",
			map[string]string{"options": "-c work_mem=3MB -c application_name=a", "application_name": "b"},
			"RESET ALL;SELECT pg_catalog.set_config('application_name','b',false),pg_catalog.set_config('work_mem','3MB',false);"},
		{"an application name is applied with set_config",
			map[string]string{"user": "app", "application_name": "pgbench"},
			"RESET ALL;SELECT pg_catalog.set_config('application_name','pgbench',false);"},
		{"options -c settings are applied, quotes escaped",
			map[string]string{"options": "-c search_path=it's --statement-timeout=5s", "application_name": "x"},
			"RESET ALL;SELECT pg_catalog.set_config('application_name','x',false),pg_catalog.set_config('search_path','it''s',false),pg_catalog.set_config('statement_timeout','5s',false);"},
		{"protocol options are not settings",
			map[string]string{"_pq_.command_tag": "x", "replication": "false", "application_name": "slipstream"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startupSettings(tt.params, profile).key; got != tt.want {
				t.Errorf("setup = %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestSettingsFollowSetAndReset(t *testing.T) {
	st := startupSettings(map[string]string{"application_name": "web"}, nil)
	apply := func(q string) {
		for _, s := range classify.Session(q).Settings {
			st.Apply(s)
		}
		st.rekey()
	}
	apply("SET search_path TO a, b")
	apply("SET statement_timeout = 1000")
	apply("SET search_path TO c")
	want := "RESET ALL;SELECT pg_catalog.set_config('application_name','web',false);SET statement_timeout = 1000\n;SET search_path TO c\n;"
	if st.key != want {
		t.Fatalf("after SETs: %q\nwant %q", st.key, want)
	}
	apply("RESET statement_timeout")
	apply("SET search_path TO DEFAULT")
	if want := "RESET ALL;SELECT pg_catalog.set_config('application_name','web',false);"; st.key != want {
		t.Fatalf("after RESETs: %q\nwant %q", st.key, want)
	}
	apply("SET x.y = 1; RESET ALL")
	if want := "RESET ALL;SELECT pg_catalog.set_config('application_name','web',false);"; st.key != want {
		t.Fatalf("RESET ALL must go back to the startup values: %q", st.key)
	}
}

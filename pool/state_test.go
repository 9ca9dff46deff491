package pool

import (
	"context"
	"strings"
	"testing"
	"time"

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

// What a connection holds after a transaction's settings commit: the session's key, but after a
// RESET ALL (which takes the connection to its own startup values, not the client's) either
// the connection's own defaults or, with SETs after it, a state that matches no session.
func TestAConnectionAfterCommittedSettingsHoldsWhatItRan(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		tx     string
		want   func(st *settings) string
	}{
		{"SETs: the session's key", map[string]string{"application_name": "web"}, "SET search_path TO a",
			func(st *settings) string { return st.key }},
		{"RESET ALL with startup values: the connection's own", map[string]string{"application_name": "web"},
			"SET search_path TO a; RESET ALL", func(*settings) string { return "" }},
		{"RESET ALL then a SET: no session's state", map[string]string{"application_name": "web"},
			"RESET ALL; SET search_path TO b", func(*settings) string { return unknownState }},
		{"RESET ALL without startup values: the session's key", map[string]string{"application_name": "slipstream"},
			"RESET ALL; SET search_path TO b", func(st *settings) string { return st.key }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startupSettings(tt.params, map[string]string{"application_name": "slipstream"})
			st.Stage(classify.Session(tt.tx).Settings...)
			resetAll := st.Commit()
			st.rekey()
			if got, want := st.heldAfterCommit(resetAll), tt.want(&st); got != want {
				t.Errorf("held %q, want %q", got, want)
			}
			if tt.tx == "RESET ALL; SET search_path TO b" && !strings.Contains(st.key, "SET search_path TO b") {
				t.Errorf("a SET after RESET ALL in one transaction is lost: key %q", st.key)
			}
		})
	}
}

// A transaction that runs RESET ALL and then a SET leaves its connection neither in the
// session's settings nor in the connection's own: the next session on it, even one whose
// settings are the connection's own, must not see the SET.
func TestASetAfterResetAllInATransactionReachesNoOtherSession(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1, QueueTimeout: 5 * time.Second})
	a := p.NewSession(context.Background(), map[string]string{"application_name": "web"})
	defer a.Close()
	for _, q := range []string{"BEGIN", "RESET ALL", "SET search_path TO leaked", "SHOW search_path", "COMMIT"} {
		resp, err := exchange(t, a, query(q))
		if err != nil || strings.Contains(answer(resp), "E(") {
			t.Fatalf("%s: %s %v", q, answer(resp), err)
		}
		if q == "SHOW search_path" && answer(resp) != "T D(leaked) C Z" {
			t.Fatalf("a's own search_path: %s", answer(resp))
		}
	}
	p.mu.Lock()
	own := p.profile["application_name"]
	p.mu.Unlock()
	b := p.NewSession(context.Background(), map[string]string{"application_name": own})
	defer b.Close()
	if b.settings.key != "" {
		t.Fatalf("b has settings of its own (%q): the test needs a session in the connection's", b.settings.key)
	}
	resp, err := exchange(t, b, query("SHOW search_path"))
	if err != nil || strings.Contains(answer(resp), "leaked") {
		t.Errorf("b sees a's search_path: %s %v", answer(resp), err)
	}
}

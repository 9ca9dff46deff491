package proxy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// A session's settings join its cache key once their batch is answered without an error
// outside a transaction block; anything else leaves the session dirty.
func TestSessionSettingsFollowTheirAnswers(t *testing.T) {
	cs, st := newCacheState("app", map[string]string{"user": "app"}), sessionstate.NewPG()
	stage := func(cs *cacheState, sql string) {
		st.StageBatch(classify.Session(sql).Settings, false, true)
	}
	answered := func(status byte, failed bool) {
		if st.Answered(status, failed) {
			cs.rekey(&st.Settings)
		}
	}
	base := bytes.Clone(cs.keyBase)

	stage(cs, "SET search_path TO a -- the tenant's")
	answered(0, false) // answers without ReadyForQuery yet: nothing decided
	if !st.Pending() || !bytes.Equal(cs.keyBase, base) {
		t.Fatal("settings applied before their batch's ReadyForQuery")
	}
	answered('I', false)
	if st.Dirty || bytes.Equal(cs.keyBase, base) || st.Pending() {
		t.Fatalf("after an answered SET: dirty %v, key changed %v", st.Dirty, !bytes.Equal(cs.keyBase, base))
	}
	withA := bytes.Clone(cs.keyBase)
	if q := st.Settings.Script(); !strings.Contains(q, "SET search_path TO a -- the tenant's\n;") {
		t.Errorf("settings query %q: each statement must end on a line of its own", q)
	}

	stage(cs, "SET TIME ZONE 'UTC'")
	answered('I', false)
	stage(cs, "RESET TimeZone")
	answered('I', false)
	if !bytes.Equal(cs.keyBase, withA) {
		t.Error("a RESET did not bring the key back to the settings before the SET")
	}
	stage(cs, "RESET ALL")
	answered('I', false)
	if !bytes.Equal(cs.keyBase, base) || st.Settings.Script() != "" {
		t.Error("RESET ALL did not bring the key back to the startup settings")
	}

	stage(cs, "SET search_path TO b")
	answered(0, true) // an error, then later the ReadyForQuery
	answered('I', false)
	if !st.Dirty {
		t.Error("a failed batch of SETs did not leave the session dirty")
	}
}

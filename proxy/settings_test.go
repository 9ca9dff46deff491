package proxy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

// A session's settings join its cache key once their batch is answered without an error
// outside a transaction block; anything else leaves the session dirty.
func TestSessionSettingsFollowTheirAnswers(t *testing.T) {
	stage := func(cs *cacheState, sql string) {
		cs.staged = append(cs.staged, classify.Session(sql).Settings...)
	}
	cs := newCacheState("app", map[string]string{"user": "app"})
	base := bytes.Clone(cs.keyBase)

	stage(cs, "SET search_path TO a -- the tenant's")
	cs.settingsAnswered(0, false) // answers without ReadyForQuery yet: nothing decided
	if len(cs.staged) == 0 || !bytes.Equal(cs.keyBase, base) {
		t.Fatal("settings applied before their batch's ReadyForQuery")
	}
	cs.settingsAnswered('I', false)
	if cs.dirty || bytes.Equal(cs.keyBase, base) || len(cs.staged) != 0 {
		t.Fatalf("after an answered SET: dirty %v, key changed %v", cs.dirty, !bytes.Equal(cs.keyBase, base))
	}
	withA := bytes.Clone(cs.keyBase)
	if q := cs.settingsQuery(); !strings.Contains(q, "SET search_path TO a -- the tenant's\n;") {
		t.Errorf("settings query %q: each statement must end on a line of its own", q)
	}

	stage(cs, "SET TIME ZONE 'UTC'")
	cs.settingsAnswered('I', false)
	stage(cs, "RESET TimeZone")
	cs.settingsAnswered('I', false)
	if !bytes.Equal(cs.keyBase, withA) {
		t.Error("a RESET did not bring the key back to the settings before the SET")
	}
	stage(cs, "RESET ALL")
	cs.settingsAnswered('I', false)
	if !bytes.Equal(cs.keyBase, base) || cs.settingsQuery() != "" {
		t.Error("RESET ALL did not bring the key back to the startup settings")
	}

	stage(cs, "SET search_path TO b")
	cs.settingsAnswered(0, true) // an error, then later the ReadyForQuery
	cs.settingsAnswered('I', false)
	if !cs.dirty {
		t.Error("a failed batch of SETs did not leave the session dirty")
	}
}

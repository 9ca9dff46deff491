package sessionstate

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

func TestPGFollowsABatchOfSettingsByItsAnswer(t *testing.T) {
	type step struct {
		sql            string
		followable     bool
		status         byte
		failed         bool
		wantScript     string
		wantDirty      bool
		wantStatements int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a SET answered at idle is in force", []step{
			{"SET search_path TO a", true, 'I', false, "SET search_path TO a\n;\n", false, 1}}},
		{"a SET answered in a transaction block leaves the session dirty", []step{
			{"SET search_path TO a", true, 'T', false, "", true, 1}}},
		{"a failed SET leaves the session dirty", []step{
			{"SET search_path TO a", true, 'I', true, "", true, 1}}},
		{"a SET beside other statements leaves the session dirty", []step{
			{"SET search_path TO a", false, 'I', false, "", true, 1}}},
		{"settings are listed by name, the last of each winning", []step{
			{"SET work_mem = '4MB'", true, 'I', false, "SET work_mem = '4MB'\n;\n", false, 1},
			{"SET search_path TO a; SET work_mem = '8MB'", true, 'I', false,
				"SET search_path TO a\n;\nSET work_mem = '8MB'\n;\n", false, 1}}},
		{"RESET ALL forgets every setting", []step{
			{"SET search_path TO a", true, 'I', false, "SET search_path TO a\n;\n", false, 1},
			{"RESET ALL", true, 'I', false, "", false, 1}}},
		{"DISCARD ALL forgets settings, statements and what made the session dirty", []step{
			{"SET search_path TO a", false, 'I', false, "", true, 1},
			{"DISCARD ALL", true, 'I', false, "", false, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewPG()
			s.Prepare("s1", Statement{Query: "SELECT 1"})
			for _, st := range tt.steps {
				e := classify.Session(st.sql)
				s.StageBatch(e.Settings, e.DropsPrepared, st.followable)
				s.Answered(st.status, st.failed)
				if got := s.Settings.Script(); got != st.wantScript {
					t.Errorf("after %q: script %q, want %q", st.sql, got, st.wantScript)
				}
				if s.Dirty != st.wantDirty || len(s.Statements) != st.wantStatements || s.Tx != st.status {
					t.Errorf("after %q: dirty %v statements %d tx %c, want %v %d %c", st.sql, s.Dirty,
						len(s.Statements), s.Tx, st.wantDirty, st.wantStatements, st.status)
				}
			}
		})
	}
}

func TestPGStagesNothingUntilReadyForQuery(t *testing.T) {
	s := NewPG()
	s.StageBatch(classify.Session("SET search_path TO a").Settings, false, true)
	if s.Answered(0, false) || !s.Pending() || s.Quiet() {
		t.Fatal("settings applied before their batch's ReadyForQuery")
	}
	if !s.Answered('I', false) || s.Pending() || !s.Quiet() {
		t.Fatal("settings not applied at ReadyForQuery")
	}
}

func TestSettingsReplayInTheOrderMadeAndRollBack(t *testing.T) {
	s := Settings{Base: map[string]string{"application_name": "web"}}
	stage := func(q string) { s.Stage(classify.Session(q).Settings...) }
	stage("SET search_path TO a, b")
	stage("SET statement_timeout = 1000")
	stage("SET search_path TO c")
	if s.Commit() {
		t.Error("Commit reported a RESET ALL among SETs")
	}
	want := "RESET ALL;SELECT pg_catalog.set_config('application_name','web',false);SET statement_timeout = 1000\n;SET search_path TO c\n;"
	if got := s.Replay(); got != want {
		t.Fatalf("replay %q\nwant %q", got, want)
	}
	stage("SET work_mem = '1MB'")
	s.Drop()
	if got := s.Replay(); got != want {
		t.Fatalf("a rolled-back SET is replayed: %q", got)
	}
	stage("RESET ALL")
	stage("SET work_mem = '2MB'")
	if !s.Commit() {
		t.Error("Commit did not report RESET ALL")
	}
	if got, want := s.Replay(), "RESET ALL;SELECT pg_catalog.set_config('application_name','web',false);SET work_mem = '2MB'\n;"; got != want {
		t.Fatalf("after RESET ALL and a SET: %q\nwant %q", got, want)
	}
	var r Settings
	r.Restore(s.ByName())
	if r.Script() != s.Script() {
		t.Errorf("restored %q, want %q", r.Script(), s.Script())
	}
}

func TestAppendParsesNamesEveryStatement(t *testing.T) {
	s := NewPG()
	s.Prepare("a", Statement{Query: "SELECT $1", Types: []byte{0, 1, 0, 0, 0, 23}})
	s.Prepare("", Statement{Query: "SELECT 2"})
	s.Close("a")
	s.Prepare("b", Statement{Query: "SELECT 3"})
	got := string(s.AppendParses(nil))
	want := "P\x00\x00\x00\x0fb\x00SELECT 3\x00" + "P\x00\x00\x00\x0e\x00SELECT 2\x00"
	if got != want {
		t.Errorf("parses %q, want %q", got, want)
	}
}

func TestPGFollowsOnlyTextsOfNothingButSettingsOutsideATransaction(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		tx   byte
		want bool
	}{
		{"SET search_path TO a; SET work_mem = '1MB'", 'I', true},
		{"DISCARD ALL", 'I', true},
		{"SET search_path TO a", 'T', false},
		{"SET search_path TO a; SELECT 1", 'I', false},
		{"DISCARD ALL; SET search_path TO a", 'I', true},
		{"SET SESSION AUTHORIZATION bob", 'I', false},
	} {
		s := NewPG()
		s.Tx = tc.tx
		if got := s.Followable(classify.Session(tc.sql)); got != tc.want {
			t.Errorf("%q at %c: followable %v, want %v", tc.sql, tc.tx, got, tc.want)
		}
	}
}

// TestPGKnowsWhichStatementsTheOriginMayNotHold: a Parse of a name in use keeps the statement
// the origin keeps (42P05), with another text it makes it Unsure; every Parse of a batch whose
// answer has an error is Unsure (one after the error is skipped, up to the Sync).
func TestPGKnowsWhichStatementsTheOriginMayNotHold(t *testing.T) {
	s := NewPG()
	s.BeginBatch()
	s.Prepare("s1", Statement{Query: "select 1"})
	s.Answered('I', false)
	s.BeginBatch()
	s.Prepare("s1", Statement{Query: "select 1"})
	if st, _ := s.Statement("s1"); st.Query != "select 1" || st.Unsure {
		t.Errorf("the same text again: %+v", st)
	}
	s.Prepare("s1", Statement{Query: "select v from t"})
	s.Answered('I', false)
	if st, _ := s.Statement("s1"); st.Query != "select 1" || !st.Unsure {
		t.Errorf("another text under a name in use: %+v, want the first, unsure", st)
	}
	s.BeginBatch()
	s.Prepare("s2", Statement{Query: "select 2"})
	s.Prepare("", Statement{Query: "select 3"})
	s.Answered(0, true)
	s.Answered('I', false)
	if st, _ := s.Statement("s2"); !st.Unsure {
		t.Errorf("a statement parsed in a failed batch: %+v, want unsure", st)
	}
	if st, _ := s.Statement(""); !st.Unsure {
		t.Errorf("the unnamed statement parsed in a failed batch: %+v, want unsure", st)
	}
	s.BeginBatch()
	s.Prepare("s3", Statement{Query: "select 4"})
	s.Answered('I', false)
	if st, _ := s.Statement("s3"); st.Unsure {
		t.Errorf("a statement of a batch answered without an error: %+v", st)
	}
}

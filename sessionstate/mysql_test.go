package sessionstate

import (
	"fmt"
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

func TestMySQLFollowsWhatTheOriginSaidOKTo(t *testing.T) {
	tests := []struct {
		name       string
		sql        string
		followable bool
		wantDB     string
		wantNames  string
		wantVars   int
		wantDirty  bool
	}{
		{"USE selects the database", "USE shop", false, "shop", "", 0, false},
		{"SET NAMES is followed", "SET NAMES utf8mb4", false, "", "setnames utf8mb4", 0, false},
		{"a followable variable is kept as its text", "SET time_zone = '+00:00'", true, "", "", 1, false},
		{"a variable that may not give the same value again makes the session dirty", "SET time_zone = '+00:00'", false, "", "", 0, true},
		{"a user variable makes the session dirty", "SET @x = 1", true, "", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMySQL()
			e := classify.ClassifyMySQLSession(tt.sql)
			vars := ""
			if s.Note(e, tt.followable) {
				vars = tt.sql
			}
			s.Ran(e, vars)
			if s.DB != tt.wantDB || s.Names != tt.wantNames || len(s.Vars) != tt.wantVars || s.Dirty != tt.wantDirty {
				t.Errorf("db %q names %q vars %d dirty %v; want %q %q %d %v", s.DB, s.Names, len(s.Vars), s.Dirty,
					tt.wantDB, tt.wantNames, tt.wantVars, tt.wantDirty)
			}
		})
	}
}

func TestMySQLVarsAreBoundedAndResetKeepsTheDatabase(t *testing.T) {
	s := NewMySQL()
	s.InitDB("shop")
	s.Prepared(7, "SELECT ?", 1)
	if st := s.Statements[7]; st == nil || st.DB != "shop" || st.Params != 1 {
		t.Fatalf("prepared statement %+v", st)
	}
	for i := 0; i <= MaxVars; i++ {
		q := fmt.Sprintf("SET wait_timeout = %d", i+1)
		e := classify.ClassifyMySQLSession(q)
		if s.Note(e, true) {
			s.Ran(e, q)
		}
	}
	if len(s.Vars) != MaxVars || !s.Dirty {
		t.Fatalf("after %d variables: %d kept, dirty %v", MaxVars+1, len(s.Vars), s.Dirty)
	}
	s.ResetConnection()
	if s.DB != "shop" || len(s.Vars) != 0 || len(s.Statements) != 0 || s.Names != "" {
		t.Errorf("after COM_RESET_CONNECTION: %+v", s)
	}
}

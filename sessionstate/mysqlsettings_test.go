package sessionstate

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

func TestMySQLSettingsKeepTheLastAssignmentOfEachKey(t *testing.T) {
	var st MySQLSettings
	st.Apply([]classify.MySQLAssignment{{Key: "names", Text: "NAMES latin1"}, {Key: "@x", Text: "@x = 1"}})
	st.Apply([]classify.MySQLAssignment{{Key: "names", Text: "NAMES utf8mb4"}})
	st.Apply([]classify.MySQLAssignment{{Key: "tx isolation", Text: "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", Alone: true}})
	if want := "SET @x = 1, NAMES utf8mb4; SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE"; st.Key() != want {
		t.Errorf("key = %q, want %q", st.Key(), want)
	}
}

package sessionstate

import (
	"slices"
	"strings"

	"github.com/slipstream-proxy/slipstream/classify"
)

// MySQLSettings are the assignments a MySQL session made that every origin connection it runs
// on must carry: the pool side's instance (pool/mysql), which replays them on each connection
// it leases, one assignment per key (classify.MySQLAssignment), the last one winning. The
// edge follows the same session as whole statements (MySQL.Vars): it needs only a key and a
// replay on one new pool side, and reads text with the parser the cache uses.
type MySQLSettings struct {
	assignments []classify.MySQLAssignment // oldest first; one per key
	stmts       []string                   // the statements that replay them: one SET, then those alone
	key         string                     // the statements joined: the connection fingerprint, "" for none
}

// Apply records assignments that succeeded, the last one of each key winning.
func (st *MySQLSettings) Apply(sets []classify.MySQLAssignment) {
	if len(sets) == 0 {
		return
	}
	for _, s := range sets {
		st.assignments = slices.DeleteFunc(st.assignments, func(old classify.MySQLAssignment) bool { return old.Key == s.Key })
		st.assignments = append(st.assignments, s)
	}
	var b strings.Builder
	st.stmts = st.stmts[:0]
	for _, s := range st.assignments {
		if s.Alone {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("SET ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(s.Text)
	}
	if b.Len() > 0 {
		st.stmts = append(st.stmts, b.String())
	}
	for _, s := range st.assignments {
		if s.Alone {
			st.stmts = append(st.stmts, s.Text)
		}
	}
	st.key = strings.Join(st.stmts, "; ")
}

// Key names the settings exactly: a connection that ran Statements holds Key; "" for none.
func (st *MySQLSettings) Key() string { return st.key }

// Statements are what puts a connection reset to its defaults into these settings.
func (st *MySQLSettings) Statements() []string { return st.stmts }

// Clear forgets every assignment (COM_RESET_CONNECTION, COM_CHANGE_USER).
func (st *MySQLSettings) Clear() { *st = MySQLSettings{} }

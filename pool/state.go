package pool

import (
	"sort"
	"strings"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Session settings follow a client from one origin connection to the next. A session's settings
// are its startup parameters (base) and the session-level SETs it made since (sets); their key
// names that state exactly, and a connection remembers the key of the state it holds. When a
// unit starts on a connection holding another key, the session first sends, pipelined with the
// unit and swallowed, "RESET ALL" followed by its settings. Clients with the same settings share
// a key, so the common case costs nothing.

type settings struct {
	base map[string]string // startup parameter -> value, applied with set_config
	sets []classify.Setting
	key  string
}

// startupSettings returns the settings a client's startup parameters ask for, leaving out the
// values the origin reports anyway. A client that sends no application_name has none, as on a
// direct connection, although origin connections call themselves slipstream.
func startupSettings(params, profile map[string]string) settings {
	var st settings
	want := pgwire.StartupSettings(params)
	if _, sent := want["application_name"]; !sent {
		want["application_name"] = ""
	}
	for k, v := range want {
		if pv, ok := profileValue(profile, k); ok && pv == v || !ok && v == "" && k == "application_name" {
			continue
		}
		if st.base == nil {
			st.base = make(map[string]string)
		}
		st.base[k] = v
	}
	st.rekey()
	return st
}

func profileValue(profile map[string]string, k string) (string, bool) {
	if v, ok := profile[k]; ok {
		return v, true
	}
	for pk, v := range profile {
		if strings.EqualFold(pk, k) {
			return v, true
		}
	}
	return "", false
}

// apply changes the settings by one committed SET or RESET.
func (st *settings) apply(set classify.Setting) {
	if set.All {
		st.sets = nil
		return
	}
	kept := st.sets[:0]
	for _, x := range st.sets {
		if x.Name != set.Name {
			kept = append(kept, x)
		}
	}
	st.sets = kept
	if !set.Reset {
		st.sets = append(st.sets, set)
	}
	// A RESET goes back to the startup value, which the base replays.
}

// rekey recomputes the key after a change.
func (st *settings) rekey() {
	st.key = st.setupSQL()
}

// setupSQL is the query that puts a connection into these settings; "" means the connection's
// own defaults.
func (st *settings) setupSQL() string {
	if len(st.base) == 0 && len(st.sets) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("RESET ALL;")
	if len(st.base) > 0 {
		names := make([]string, 0, len(st.base))
		for k := range st.base {
			names = append(names, k)
		}
		sort.Strings(names)
		b.WriteString("SELECT ")
		for i, k := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("pg_catalog.set_config(")
			quoteLiteral(&b, k)
			b.WriteByte(',')
			quoteLiteral(&b, st.base[k])
			b.WriteString(",false)")
		}
		b.WriteByte(';')
	}
	for _, set := range st.sets {
		b.WriteString(set.Stmt)
		b.WriteString("\n;") // the statement may end in a -- comment
	}
	return b.String()
}

// quoteLiteral writes s as a standard-conforming SQL string literal.
func quoteLiteral(b *strings.Builder, s string) {
	b.WriteByte('\'')
	b.WriteString(strings.ReplaceAll(s, "'", "''"))
	b.WriteByte('\'')
}

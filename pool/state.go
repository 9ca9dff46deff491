package pool

import (
	"strings"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
	"github.com/slipstream-proxy/slipstream/sessionstate"
)

// Session settings follow a client from one origin connection to the next. A session's settings
// are its startup parameters (base) and the session-level SETs it made since (sets); their key
// names that state exactly, and a connection remembers the key of the state it holds. When a
// unit starts on a connection holding another key, the session first sends, pipelined with the
// unit and swallowed, "RESET ALL" followed by its settings. Clients with the same settings share
// a key, so the common case costs nothing.

type settings struct {
	sessionstate.Settings
	key string // Replay(), kept at each change: names what a connection holding them holds
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
		if st.Base == nil {
			st.Base = make(map[string]string)
		}
		st.Base[k] = v
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

// rekey recomputes the key after a change.
func (st *settings) rekey() {
	st.key = st.Replay()
}

// heldAfterCommit is the key of what a connection holds once it ran the committed changes:
// the session's key, but for a RESET ALL among them when the session has startup values of its
// own, which took the connection back to the connection's startup values: "" when nothing was
// set after it, else a state no session has, so that any session sets the connection up again.
func (st *settings) heldAfterCommit(resetAll bool) string {
	switch {
	case !resetAll || len(st.Base) == 0:
		return st.key
	case st.Len() == 0:
		return ""
	}
	return unknownState
}

// unknownState is a connection's key when what it holds is known to differ from every session's.
const unknownState = "\x00unknown"

package d1

import (
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// reported are the parameters sent as ParameterStatus at startup and whenever SET changes them,
// as PostgreSQL 15 reports them (GUC_REPORT).
var reported = []string{
	"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone",
	"integer_datetimes", "standard_conforming_strings", "application_name", "is_superuser",
	"session_authorization", "IntervalStyle",
}

// settings are the session's run-time parameters. SQLite has none of them: they exist so that
// drivers, psql and the pool's session-state replay (SET, RESET ALL, set_config, SHOW) work as
// against PostgreSQL. Only what a client can observe is kept; none changes how SQLite runs.
type settings struct {
	values   map[string]string // by lower-case name
	defaults map[string]string // what RESET goes back to: built-in, then the startup packet
	names    map[string]string // lower-case name -> name as PostgreSQL spells it
}

func (st *settings) init(sqliteVersion string, startup map[string]string) {
	st.defaults = map[string]string{
		"server_version":                      "15.0 (slipstream d1 / SQLite " + sqliteVersion + ")",
		"server_version_num":                  "150000",
		"server_encoding":                     "UTF8",
		"client_encoding":                     "UTF8",
		"datestyle":                           "ISO, MDY",
		"timezone":                            "UTC",
		"intervalstyle":                       "postgres",
		"integer_datetimes":                   "on",
		"standard_conforming_strings":         "on",
		"application_name":                    "",
		"is_superuser":                        "off",
		"session_authorization":               startup["user"],
		"search_path":                         `"$user", public`,
		"extra_float_digits":                  "1",
		"statement_timeout":                   "0",
		"lock_timeout":                        "0",
		"idle_in_transaction_session_timeout": "0",
		"transaction_isolation":               "serializable",
		"default_transaction_isolation":       "serializable",
		"transaction_read_only":               "off",
		"max_identifier_length":               "63",
	}
	st.names = map[string]string{}
	for _, n := range reported {
		st.names[strings.ToLower(n)] = n
	}
	for k, v := range startup {
		switch k {
		case "user", "database", "replication", "options":
			continue
		}
		lk := strings.ToLower(k)
		if lk == "client_encoding" && !isUTF8(v) {
			continue // the client asked for a conversion D1 doesn't do; it still gets UTF8
		}
		st.defaults[lk] = v
	}
	st.values = make(map[string]string, len(st.defaults))
	for k, v := range st.defaults {
		st.values[k] = v
	}
}

func (st *settings) get(name string) string { return st.values[strings.ToLower(name)] }

func isUTF8(v string) bool {
	v = strings.ToUpper(strings.Trim(v, `'" `))
	return v == "UTF8" || v == "UTF-8" || v == "UNICODE"
}

// set changes a parameter and queues a ParameterStatus for a reported one that changed.
func (s *session) setParam(name, value string) error {
	ln := strings.ToLower(name)
	switch ln {
	case "client_encoding":
		if !isUTF8(value) {
			return errorf(codeFeatureNotSupported, "d1 supports client_encoding UTF8 only")
		}
		value = "UTF8"
	case "standard_conforming_strings":
		if v, ok := parseBool([]byte(value)); ok && !v {
			return errorf(codeFeatureNotSupported, "d1 supports standard_conforming_strings on only")
		}
		value = "on"
	case "server_version", "server_encoding", "integer_datetimes", "is_superuser", "server_version_num", "max_identifier_length":
		return errorf("55P02", "parameter %q cannot be changed", name) // cant_change_runtime_param
	}
	old, had := s.settings.values[ln]
	s.settings.values[ln] = value
	if spelled, ok := s.settings.names[ln]; ok && (!had || old != value) {
		s.wbuf = appendMsg(s.wbuf, &pgproto3.ParameterStatus{Name: spelled, Value: value})
	}
	return nil
}

// resetParam restores one parameter, or all with name "all".
func (s *session) resetParam(name string) {
	ln := strings.ToLower(name)
	if ln == "all" {
		names := make([]string, 0, len(s.settings.values))
		for k := range s.settings.values {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			s.resetParam(k)
		}
		return
	}
	if def, ok := s.settings.defaults[ln]; ok {
		if s.settings.values[ln] != def {
			_ = s.setParam(ln, def)
			s.settings.values[ln] = def
		}
		return
	}
	delete(s.settings.values, ln)
}

// parseSet reads SET [SESSION | LOCAL] name {TO | =} value[, ...] | SET TIME ZONE value.
// SET LOCAL is treated as SET SESSION: D1 keeps no per-transaction settings.
func parseSet(sql string) (name, value string, ok bool) {
	ts := tokens(sql)
	k := 1
	if k < len(ts) && (ts[k].is(sql, "SESSION") || ts[k].is(sql, "LOCAL")) {
		k++
	}
	if k+1 < len(ts) && ts[k].is(sql, "TIME") && ts[k+1].is(sql, "ZONE") {
		name = "TimeZone"
		k += 2
	} else {
		if k >= len(ts) || (ts[k].kind != tkWord && ts[k].kind != tkQuoted) {
			return "", "", false
		}
		name = unquoteIdent(ts[k].text(sql))
		k++
		for k+1 < len(ts) && ts[k].kind == tkPunct && ts[k].text(sql) == "." { // custom.name
			name += "." + unquoteIdent(ts[k+1].text(sql))
			k += 2
		}
		if k >= len(ts) || !(ts[k].is(sql, "TO") || ts[k].kind == tkPunct && ts[k].text(sql) == "=") {
			return "", "", false
		}
		k++
	}
	if k >= len(ts) {
		return "", "", false
	}
	if k == len(ts)-1 && ts[k].is(sql, "DEFAULT") {
		return name, "\x00default", true
	}
	var parts []string
	for ; k < len(ts); k++ {
		t := ts[k]
		switch {
		case t.kind == tkPunct && t.text(sql) == ",":
			continue
		case t.kind == tkString:
			parts = append(parts, unquoteString(t.text(sql)))
		case t.kind == tkPunct && t.text(sql) == "-" && k+1 < len(ts):
			parts = append(parts, "-"+ts[k+1].text(sql))
			k++
		default:
			parts = append(parts, unquoteIdent(t.text(sql)))
		}
	}
	return name, strings.Join(parts, ", "), true
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '`') {
		return strings.ReplaceAll(s[1:len(s)-1], s[:1]+s[:1], s[:1])
	}
	if len(s) >= 2 && s[0] == '[' {
		return s[1 : len(s)-1]
	}
	return s
}

func unquoteString(s string) string {
	if len(s) >= 2 && s[0] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}

// parseSetConfig reads SELECT [pg_catalog.]set_config('name', 'value', is_local)[, ...], the form
// the pool replays session settings in, and returns the (name, value) pairs.
func parseSetConfig(sql string) (pairs [][2]string, ok bool) {
	ts := tokens(sql)
	p := func(k int, s string) bool { return k < len(ts) && ts[k].kind == tkPunct && ts[k].text(sql) == s }
	k := 1
	for {
		if k+1 < len(ts) && ts[k].is(sql, "pg_catalog") && p(k+1, ".") {
			k += 2
		}
		if !(k+7 < len(ts) && ts[k].is(sql, "set_config") && p(k+1, "(") && ts[k+2].kind == tkString &&
			p(k+3, ",") && ts[k+4].kind == tkString && p(k+5, ",") && ts[k+6].kind == tkWord && p(k+7, ")")) {
			return nil, false
		}
		pairs = append(pairs, [2]string{unquoteString(ts[k+2].text(sql)), unquoteString(ts[k+4].text(sql))})
		k += 8
		if k == len(ts) {
			return pairs, true
		}
		if !p(k, ",") {
			return nil, false
		}
		k++
	}
}

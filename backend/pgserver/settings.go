package pgserver

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

// reportedName maps a reported parameter's lower-case name to its spelling.
var reportedName = func() map[string]string {
	m := make(map[string]string, len(reported))
	for _, n := range reported {
		m[strings.ToLower(n)] = n
	}
	return m
}()

// Settings are a session's run-time parameters. A backend has none of them: they exist so
// that drivers, psql and the pool's session-state replay (SET, RESET ALL, set_config, SHOW)
// work as against PostgreSQL. None changes how the backend runs. Names are case-insensitive.
type Settings struct {
	c        *Conn
	name     string            // the backend's, for messages
	values   map[string]string // by lower-case name
	defaults map[string]string // what RESET goes back to: built-in, then the startup packet
}

// init sets the defaults: PostgreSQL 15's as a client sees them, the backend's extra ones,
// then the startup packet's parameters that can be honoured.
func (st *Settings) init(c *Conn, cfg *Config, startup map[string]string) {
	st.c, st.name = c, cfg.Name
	st.defaults = map[string]string{
		"server_version":              cfg.ServerVersion,
		"server_version_num":          "150000",
		"server_encoding":             "UTF8",
		"client_encoding":             "UTF8",
		"datestyle":                   "ISO, MDY",
		"timezone":                    "UTC",
		"intervalstyle":               "postgres",
		"integer_datetimes":           "on",
		"standard_conforming_strings": "on",
		"application_name":            "",
		"is_superuser":                "off",
		"session_authorization":       startup["user"],
		"search_path":                 `"$user", public`,
		"extra_float_digits":          "1",
		"statement_timeout":           "0",
		"transaction_isolation":       "serializable",
		"max_identifier_length":       "63",
	}
	for k, v := range cfg.Settings {
		st.defaults[k] = v
	}
	for k, v := range startup {
		switch k {
		case "user", "database", "replication", "options":
			continue
		}
		lk := strings.ToLower(k)
		if v, err := st.check(lk, v); err == nil {
			st.defaults[lk] = v
		}
	}
	st.values = make(map[string]string, len(st.defaults))
	for k, v := range st.defaults {
		st.values[k] = v
	}
}

// check refuses the values no backend can honour, and returns a value as it is kept.
func (st *Settings) check(name, value string) (string, error) {
	switch name {
	case "client_encoding":
		if v := strings.ToUpper(strings.Trim(value, `'" `)); v != "UTF8" && v != "UTF-8" && v != "UNICODE" {
			return "", Errorf(CodeFeatureNotSupported, "%s supports client_encoding UTF8 only", st.name)
		}
		return "UTF8", nil
	case "standard_conforming_strings":
		switch strings.ToLower(strings.Trim(value, `'" `)) {
		case "on", "true", "yes", "1", "t", "y":
			return "on", nil
		}
		return "", Errorf(CodeFeatureNotSupported, "%s supports standard_conforming_strings on only", st.name)
	case "server_version", "server_encoding", "integer_datetimes", "is_superuser", "server_version_num", "max_identifier_length":
		return "", Errorf(CodeCantChangeParam, "parameter %q cannot be changed", name)
	}
	return value, nil
}

// Get returns a parameter's value.
func (st *Settings) Get(name string) (string, bool) {
	v, ok := st.values[strings.ToLower(name)]
	return v, ok
}

// Names returns every parameter's lower-case name, sorted, for SHOW ALL.
func (st *Settings) Names() []string {
	names := make([]string, 0, len(st.values))
	for k := range st.values {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Set changes a parameter and queues a ParameterStatus for a reported one that changed.
func (st *Settings) Set(name, value string) error {
	ln := strings.ToLower(name)
	value, err := st.check(ln, value)
	if err != nil {
		return err
	}
	old, had := st.values[ln]
	st.values[ln] = value
	if spelled, ok := reportedName[ln]; ok && (!had || old != value) {
		st.c.Send(&pgproto3.ParameterStatus{Name: spelled, Value: value})
	}
	return nil
}

// Reset restores one parameter to its default; one without a default (a custom one) is gone.
func (st *Settings) Reset(name string) {
	ln := strings.ToLower(name)
	def, ok := st.defaults[ln]
	if !ok {
		delete(st.values, ln)
		return
	}
	if st.values[ln] != def {
		st.values[ln] = def
		if spelled, ok := reportedName[ln]; ok {
			st.c.Send(&pgproto3.ParameterStatus{Name: spelled, Value: def})
		}
	}
}

// ResetAll restores every parameter, as RESET ALL and DISCARD ALL do.
func (st *Settings) ResetAll() {
	for _, k := range st.Names() {
		st.Reset(k)
	}
}

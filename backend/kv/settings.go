package kv

import (
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// reported are the parameters sent as ParameterStatus at startup and whenever they change, as
// PostgreSQL reports them.
var reported = []string{
	"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone",
	"integer_datetimes", "standard_conforming_strings", "application_name", "is_superuser",
	"session_authorization", "IntervalStyle",
}

// settings are the session's run-time parameters. None changes what a namespace does: they exist
// so that drivers and the pool's session-state replay (RESET ALL, set_config, SET, SHOW) work as
// against PostgreSQL.
type settings struct {
	values   map[string]string // by lower-case name
	defaults map[string]string // what RESET goes back to: built-in, then the startup packet
	names    map[string]string // lower-case name -> name as PostgreSQL spells it
}

func (st *settings) init(startup map[string]string) {
	st.defaults = map[string]string{
		"server_version":              "15.0 (slipstream kv)",
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
	st.names = map[string]string{}
	for _, n := range reported {
		st.names[strings.ToLower(n)] = n
	}
	for k, v := range startup {
		switch k {
		case "user", "database", "replication", "options":
			continue
		}
		if st.check(strings.ToLower(k), v) == nil {
			st.defaults[strings.ToLower(k)] = v
		}
	}
	st.values = make(map[string]string, len(st.defaults))
	for k, v := range st.defaults {
		st.values[k] = v
	}
}

// check refuses the values a namespace can't honour.
func (st *settings) check(name, value string) error {
	switch name {
	case "client_encoding":
		if v := strings.ToUpper(strings.Trim(value, `'" `)); v != "UTF8" && v != "UTF-8" && v != "UNICODE" {
			return errorf(codeFeatureNotSupported, "kv supports client_encoding UTF8 only")
		}
	case "standard_conforming_strings":
		if v := strings.ToLower(value); v != "on" && v != "true" && v != "1" {
			return errorf(codeFeatureNotSupported, "kv supports standard_conforming_strings on only")
		}
	case "server_version", "server_encoding", "integer_datetimes", "is_superuser", "server_version_num", "max_identifier_length":
		return errorf("55P02", "parameter %q cannot be changed", name) // cant_change_runtime_param
	}
	return nil
}

// setParam changes a parameter and queues a ParameterStatus for a reported one that changed.
func (s *session) setParam(name, value string) error {
	if err := s.settings.check(name, value); err != nil {
		return err
	}
	if name == "client_encoding" {
		value = "UTF8"
	}
	old, had := s.settings.values[name]
	s.settings.values[name] = value
	if spelled, ok := s.settings.names[name]; ok && (!had || old != value) {
		s.send(&pgproto3.ParameterStatus{Name: spelled, Value: value})
	}
	return nil
}

// resetParam restores one parameter to its default, or all of them with name "".
func (s *session) resetParam(name string) {
	if name == "" {
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
	if def, ok := s.settings.defaults[name]; ok {
		if s.settings.values[name] != def {
			_ = s.setParam(name, def)
		}
		return
	}
	delete(s.settings.values, name)
}

// session runs a session statement: SET, RESET, SHOW, set_config, DISCARD, DEALLOCATE and the
// transaction statements. With describe it first sends the RowDescription of one that returns
// a row.
func (s *session) sessionStatement(st *statement, describe bool) error {
	switch st.verb {
	case vSet:
		var err error
		if st.deflt {
			s.resetParam(st.name)
		} else {
			err = s.setParam(st.name, st.value)
		}
		if err != nil {
			return err
		}
	case vSetLocal:
		s.notice(codeNoActiveTx, "SET LOCAL can only be used in transaction blocks")
	case vSetNoop:
	case vReset:
		s.resetParam(st.name)
	case vShow:
		v, ok := s.settings.values[st.name]
		if !ok {
			return errorf(codeUndefinedObject, "unrecognized configuration parameter %q", st.name)
		}
		if describe {
			s.send(&pgproto3.RowDescription{Fields: answeredFields(st)})
		}
		s.send(&pgproto3.DataRow{Values: [][]byte{[]byte(v)}})
	case vSetConfig:
		row := make([][]byte, len(st.pairs))
		for i, kv := range st.pairs {
			if err := s.setParam(kv[0], kv[1]); err != nil {
				return err
			}
			row[i] = []byte(kv[1])
		}
		if describe {
			s.send(&pgproto3.RowDescription{Fields: answeredFields(st)})
		}
		s.send(&pgproto3.DataRow{Values: row})
		s.send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
		return nil
	case vDiscard:
		if st.tag == "DISCARD ALL" {
			s.closeAll()
			s.resetParam("")
		}
	case vDeallocate:
		if st.name == "" {
			for name := range s.stmts {
				delete(s.stmts, name)
			}
		} else if _, ok := s.stmts[st.name]; ok {
			delete(s.stmts, st.name)
		} else {
			return errorf(codeUnknownStatement, "prepared statement %q does not exist", st.name)
		}
	case vBegin:
		return errorf(codeFeatureNotSupported, "a KV namespace has no transactions: every statement takes effect by itself")
	case vCommit, vRollback:
		s.notice(codeNoActiveTx, "there is no transaction in progress")
	}
	s.send(&pgproto3.CommandComplete{CommandTag: []byte(st.tag)})
	return nil
}

// answeredFields is the row description of a session statement that returns a row.
func answeredFields(st *statement) []pgproto3.FieldDescription {
	switch st.verb {
	case vShow:
		return []pgproto3.FieldDescription{field(st.name, oidText, 0)}
	case vSetConfig:
		fields := make([]pgproto3.FieldDescription, len(st.pairs))
		for i := range fields {
			fields[i] = field("set_config", oidText, 0)
		}
		return fields
	}
	return nil
}

package mysqlserver

import (
	"strconv"
	"strings"
)

// The session statements that drivers and CLIs send at connect and that the pool replays:
// SET (system and user variables, NAMES, CHARACTER SET, TRANSACTION), SELECT of @@variables and
// of DATABASE() and the like, SHOW WARNINGS, SHOW VARIABLES, SHOW DATABASES, USE. None changes
// how the backend runs, except autocommit: a variable keeps what was set so that reading it
// back answers the same. The backend runs SQLite either way: text is UTF-8 whatever a client
// names (only UTF-8 character sets are accepted), isolation is serializable whatever is set.

// vars are a session's variables.
type vars struct {
	defaults   map[string]string // system variables, by lower-case name
	set        map[string]string // what SET changed, by lower-case name; user variables as "@name"
	autocommit bool
}

func newVars(cfg Config) *vars {
	return &vars{
		defaults: map[string]string{
			"version":                  cfg.ServerVersion,
			"version_comment":          cfg.Comment,
			"max_allowed_packet":       "67108864",
			"net_buffer_length":        "16384",
			"transaction_isolation":    "SERIALIZABLE",
			"tx_isolation":             "SERIALIZABLE",
			"transaction_read_only":    "0",
			"tx_read_only":             "0",
			"character_set_client":     "utf8mb4",
			"character_set_connection": "utf8mb4",
			"character_set_results":    "utf8mb4",
			"character_set_server":     "utf8mb4",
			"character_set_database":   "utf8mb4",
			"collation_connection":     "utf8mb4_general_ci",
			"collation_server":         "utf8mb4_general_ci",
			"collation_database":       "utf8mb4_general_ci",
			"sql_mode":                 "NO_BACKSLASH_ESCAPES",
			"time_zone":                "+00:00",
			"system_time_zone":         "UTC",
			"lower_case_table_names":   "0",
			"wait_timeout":             "28800",
			"interactive_timeout":      "28800",
			"net_read_timeout":         "30",
			"net_write_timeout":        "60",
			"sql_select_limit":         "18446744073709551615",
			"sql_auto_is_null":         "0",
			"auto_increment_increment": "1",
			"query_cache_size":         "0",
			"query_cache_type":         "OFF",
			"performance_schema":       "0",
			"init_connect":             "",
			"protocol_version":         "10",
		},
		set:        map[string]string{},
		autocommit: true,
	}
}

// readOnly are the variables SET refuses.
var readOnly = map[string]bool{
	"version": true, "version_comment": true, "max_allowed_packet": true, "system_time_zone": true,
	"protocol_version": true, "lower_case_table_names": true, "character_set_server": true,
	"character_set_database": true, "collation_server": true, "collation_database": true,
}

// get returns a variable's value; ok is false for a system variable that doesn't exist.
func (v *vars) get(name string) (string, bool) {
	if name == "autocommit" {
		if v.autocommit {
			return "1", true
		}
		return "0", true
	}
	if val, ok := v.set[name]; ok {
		return val, true
	}
	val, ok := v.defaults[name]
	return val, ok
}

// varName reads a variable reference: @@x, @@session.x, @@local.x, @x. global is true for
// @@global.x, user for @x.
func varName(text string) (name string, user, global bool) {
	if !strings.HasPrefix(text, "@@") {
		return "@" + strings.ToLower(strings.Trim(text[1:], "`'\"")), true, false
	}
	name = strings.ToLower(text[2:])
	switch {
	case strings.HasPrefix(name, "session."):
		name = name[len("session."):]
	case strings.HasPrefix(name, "local."):
		name = name[len("local."):]
	case strings.HasPrefix(name, "global."):
		name, global = name[len("global."):], true
	}
	return name, false, global
}

// sessionStatement runs sql if it is a session statement, reporting whether it was.
func (s *session) sessionStatement(w *Results, sql string) (bool, error) {
	ts := statementTokens(sql)
	if ts == nil {
		return false, nil
	}
	switch {
	case ts[0].Is("SET"):
		return true, s.set(ts[1:])
	case ts[0].Is("USE") && len(ts) == 2 && (ts[1].Kind == Word || ts[1].Kind == Ident):
		return true, s.UseDB(unquote(ts[1]))
	case ts[0].Is("SHOW"):
		return s.show(w, ts[1:])
	case ts[0].Is("SELECT"):
		items, limit, ok := selectItems(ts[1:])
		if !ok {
			return false, nil
		}
		return true, s.selectItems(w, items, limit)
	}
	return false, nil
}

// isSessionStatement reports whether sessionStatement would run sql, without running it.
func isSessionStatement(sql string) bool {
	ts := statementTokens(sql)
	if ts == nil {
		return false
	}
	switch {
	case ts[0].Is("SET"), ts[0].Is("USE"):
		return true
	case ts[0].Is("SHOW"):
		return len(ts) > 1 && (ts[1].Is("WARNINGS") || ts[1].Is("ERRORS") || ts[1].Is("DATABASES") ||
			ts[1].Is("SCHEMAS") || ts[1].Is("VARIABLES") || ts[1].Is("SESSION") || ts[1].Is("GLOBAL"))
	case ts[0].Is("SELECT"):
		_, _, ok := selectItems(ts[1:])
		return ok
	}
	return false
}

// statementTokens lexes one statement, dropping trailing semicolons; nil for none, for more
// than one, or for text the lexer can't read.
func statementTokens(sql string) []Token {
	ts := Lex(sql)
	for len(ts) > 0 && ts[len(ts)-1].Kind == Semi {
		ts = ts[:len(ts)-1]
	}
	for _, t := range ts {
		if t.Kind == Semi || t.Kind == Bad {
			return nil
		}
	}
	if len(ts) == 0 || ts[0].Kind != Word {
		return nil
	}
	return ts
}

func unquote(t Token) string {
	switch t.Kind {
	case Ident:
		return strings.ReplaceAll(t.Text[1:len(t.Text)-1], "``", "`")
	case String:
		return string(t.Value)
	}
	return t.Text
}

// set runs SET's forms; ts follows the SET.
func (s *session) set(ts []Token) error {
	if len(ts) == 0 {
		return syntax("SET")
	}
	if ts[0].Is("GLOBAL") || ts[0].Is("PERSIST") || ts[0].Is("PERSIST_ONLY") {
		return errorf(1227, "42000", "Access denied; you need (at least one of) the SUPER privilege(s) for this operation")
	}
	scope := 0
	if ts[0].Is("SESSION") || ts[0].Is("LOCAL") {
		scope = 1
	}
	if scope < len(ts) && ts[scope].Is("TRANSACTION") {
		// SET [SESSION] TRANSACTION ISOLATION LEVEL …, READ ONLY | READ WRITE: SQLite is
		// serializable whatever is asked; the session level is kept to be read back.
		for k := scope + 1; k+2 < len(ts); k++ {
			if ts[k].Is("ISOLATION") && ts[k+1].Is("LEVEL") {
				level := strings.ToUpper(ts[k+2].Text)
				if k+3 < len(ts) && (level == "READ" || level == "REPEATABLE") {
					level += "-" + strings.ToUpper(ts[k+3].Text)
				}
				if scope == 1 {
					s.vars.set["transaction_isolation"], s.vars.set["tx_isolation"] = level, level
				}
			}
		}
		return nil
	}
	if ts[0].Is("NAMES") || ts[0].Is("CHARSET") || len(ts) > 1 && ts[0].Is("CHARACTER") && ts[1].Is("SET") {
		k := 1
		if ts[0].Is("CHARACTER") {
			k = 2
		}
		if k >= len(ts) {
			return syntax("SET NAMES")
		}
		cs := strings.ToLower(unquote(ts[k]))
		if cs == "default" {
			cs = "utf8mb4"
		}
		if err := checkCharset(cs); err != nil {
			return err
		}
		for _, n := range []string{"character_set_client", "character_set_connection", "character_set_results"} {
			s.vars.set[n] = cs
		}
		if k+2 < len(ts) && ts[k+1].Is("COLLATE") {
			s.vars.set["collation_connection"] = strings.ToLower(unquote(ts[k+2]))
		}
		return nil
	}
	// name = value[, name = value …]
	for k := 0; k < len(ts); {
		var name string
		user := false
		if ts[k].Is("SESSION") || ts[k].Is("LOCAL") {
			k++
		}
		if k >= len(ts) {
			return syntax("SET")
		}
		switch ts[k].Kind {
		case Var:
			var global bool
			name, user, global = varName(ts[k].Text)
			if name == "" || name == "@" {
				return syntax("SET")
			}
			if global {
				return errorf(1227, "42000", "Access denied; you need (at least one of) the SUPER privilege(s) for this operation")
			}
		case Word, Ident:
			name = strings.ToLower(unquote(ts[k]))
		default:
			return syntax("SET")
		}
		k++
		if k >= len(ts) || !(ts[k].IsPunct("=") || ts[k].IsPunct(":=")) {
			return syntax("SET")
		}
		k++
		value, deflt, n, err := s.setValue(ts[k:])
		if err != nil {
			return err
		}
		k += n
		if err := s.assign(name, user, value, deflt); err != nil {
			return err
		}
		if k < len(ts) {
			if !ts[k].IsPunct(",") {
				return errorf(erNotSupportedYet, "42000", "SET takes literal values only (a string, a number, ON, OFF, DEFAULT or a variable)")
			}
			k++
		}
	}
	return nil
}

// setValue reads the value of an assignment: a literal, a word, or a variable; n is the tokens
// it took.
func (s *session) setValue(ts []Token) (value string, deflt bool, n int, err error) {
	if len(ts) == 0 {
		return "", false, 0, syntax("SET")
	}
	t := ts[0]
	switch {
	case t.Is("DEFAULT"):
		return "", true, 1, nil
	case t.Kind == String:
		return string(t.Value), false, 1, nil
	case t.Kind == Number, t.Kind == Word, t.Kind == Ident:
		return unquote(t), false, 1, nil
	case (t.IsPunct("-") || t.IsPunct("+")) && len(ts) > 1 && ts[1].Kind == Number:
		return strings.TrimPrefix(t.Text, "+") + ts[1].Text, false, 2, nil
	case t.Kind == Var:
		name, user, _ := varName(t.Text)
		if user {
			return s.vars.set[name], false, 1, nil
		}
		v, ok := s.vars.get(name)
		if !ok {
			return "", false, 0, unknownVar(name)
		}
		return v, false, 1, nil
	}
	return "", false, 0, errorf(erNotSupportedYet, "42000", "SET takes literal values only (a string, a number, ON, OFF, DEFAULT or a variable)")
}

// assign sets one variable.
func (s *session) assign(name string, user bool, value string, deflt bool) error {
	if user {
		s.vars.set[name] = value
		return nil
	}
	if readOnly[name] {
		return errorf(erReadOnlyVariable, "HY000", "Variable '%s' is a read only variable", name)
	}
	switch name {
	case "autocommit":
		on := true
		if !deflt {
			switch strings.ToUpper(value) {
			case "1", "ON", "TRUE":
			case "0", "OFF", "FALSE":
				on = false
			default:
				return errorf(erWrongValueForVar, "42000", "Variable 'autocommit' can't be set to the value of '%s'", value)
			}
		}
		if err := s.b.SetAutocommit(on); err != nil {
			return err
		}
		s.vars.autocommit = on
		return nil
	case "character_set_client", "character_set_connection", "character_set_results":
		if deflt {
			value = "utf8mb4"
		}
		if err := checkCharset(strings.ToLower(value)); err != nil {
			return err
		}
	case "sql_mode":
		if deflt {
			break
		}
		// String literals follow NO_BACKSLASH_ESCAPES whatever the client asks: the mode says so.
		if !strings.Contains(strings.ToUpper(value), "NO_BACKSLASH_ESCAPES") {
			if value != "" {
				value += ","
			}
			value += "NO_BACKSLASH_ESCAPES"
		}
	}
	if deflt {
		delete(s.vars.set, name)
		return nil
	}
	s.vars.set[name] = value
	return nil
}

// checkCharset accepts the character sets that are UTF-8 (or bytes as they are).
func checkCharset(cs string) error {
	switch cs {
	case "utf8mb4", "utf8", "utf8mb3", "binary", "null":
		return nil
	}
	return errorf(erNotSupportedYet, "42000", "only utf8mb4 is supported: the data is UTF-8 text ('%s' was asked for)", cs)
}

func syntax(what string) error {
	return errorf(erSyntax, "42000", "You have an error in your SQL syntax near '%s'", what)
}

func unknownVar(name string) error {
	return errorf(erUnknownSystemVariable, "HY000", "Unknown system variable '%s'", name)
}

// item is one expression of a session SELECT.
type item struct {
	expr  string // the variable (lower-case, "@" prefix for a user one) or function
	alias string
}

// selectItems reads SELECT item [AS alias], … [LIMIT n] where every item is a variable or one
// of the session functions; ok is false for any other SELECT.
func selectItems(ts []Token) (items []item, limit int64, ok bool) {
	limit = -1
	k := 0
	for k < len(ts) {
		t := ts[k]
		var it item
		switch {
		case t.Kind == Var:
			name, _, global := varName(t.Text)
			if global || name == "" || name == "@" {
				return nil, 0, false
			}
			it = item{expr: name, alias: t.Text}
			k++
		case t.Kind == Word && k+2 < len(ts) && ts[k+1].IsPunct("(") && ts[k+2].IsPunct(")"):
			fn := strings.ToUpper(t.Text)
			switch fn {
			case "DATABASE", "SCHEMA", "USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER", "VERSION", "CONNECTION_ID", "LAST_INSERT_ID":
			default:
				return nil, 0, false
			}
			it = item{expr: fn + "()", alias: t.Text + "()"}
			k += 3
		default:
			return nil, 0, false
		}
		if k < len(ts) && ts[k].Is("AS") {
			k++
			if k >= len(ts) {
				return nil, 0, false
			}
		}
		if k < len(ts) && (ts[k].Kind == Ident || ts[k].Kind == String || ts[k].Kind == Word && !ts[k].Is("LIMIT") && !ts[k].Is("FROM")) {
			it.alias = unquote(ts[k])
			k++
		}
		items = append(items, it)
		if k < len(ts) && ts[k].IsPunct(",") {
			k++
			continue
		}
		break
	}
	if len(items) == 0 {
		return nil, 0, false
	}
	if k+1 < len(ts) && ts[k].Is("LIMIT") && ts[k+1].Kind == Number {
		n, err := strconv.ParseInt(ts[k+1].Text, 10, 64)
		if err != nil {
			return nil, 0, false
		}
		limit = n
		k += 2
	}
	return items, limit, k == len(ts)
}

// selectItems answers a session SELECT with one row.
func (s *session) selectItems(w *Results, items []item, limit int64) error {
	cols := make([]Column, len(items))
	vals := make([]*string, len(items))
	for i, it := range items {
		var v string
		switch {
		case it.expr[0] == '@':
			if val, ok := s.vars.set[it.expr]; ok {
				v = val
			} else {
				vals[i] = nil
				cols[i] = Column{Name: it.alias, Type: TypeVarString}
				continue
			}
		case strings.HasSuffix(it.expr, "()"):
			switch it.expr {
			case "DATABASE()", "SCHEMA()":
				v = s.cfg.Database
			case "VERSION()":
				v = s.cfg.ServerVersion
			case "CONNECTION_ID()":
				v = strconv.FormatUint(uint64(s.c.ConnectionID()), 10)
			case "LAST_INSERT_ID()":
				v = strconv.FormatUint(s.lastInsertID, 10)
			default:
				v = s.c.GetUser() + "@localhost"
			}
		default:
			val, ok := s.vars.get(it.expr)
			if !ok {
				return unknownVar(it.expr)
			}
			v = val
		}
		vals[i] = &v
		cols[i] = Column{Name: it.alias, Type: TypeVarString}
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			cols[i].Type = TypeLongLong
		}
	}
	if err := w.Columns(cols); err != nil {
		return err
	}
	if limit == 0 {
		return nil
	}
	w.BeginRow()
	for i, v := range vals {
		switch {
		case v == nil:
			w.Null()
		case cols[i].Type == TypeLongLong:
			n, _ := strconv.ParseInt(*v, 10, 64)
			w.Int(n)
		default:
			w.Bytes([]byte(*v))
		}
	}
	return w.EndRow()
}

// sessionStmt is a session statement prepared with COM_STMT_PREPARE; it runs as a query.
type sessionStmt struct {
	s   *session
	sql string
}

func (st *sessionStmt) Params() int       { return 0 }
func (st *sessionStmt) Columns() []Column { return nil }
func (st *sessionStmt) Close()            {}
func (st *sessionStmt) Execute(w *Results, _ []any) error {
	_, err := st.s.sessionStatement(w, st.sql)
	return err
}

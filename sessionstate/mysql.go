package sessionstate

import "github.com/slipstream-proxy/slipstream/classify"

// MySQLStatement is one of a MySQL client's prepared statements, under the id the origin gave
// it when the client prepared it.
type MySQLStatement struct {
	SQL    string
	DB     string // the database it was prepared in; "" the session's first
	Params int
	Types  []byte // the parameter types the client last sent
	// PoolTypes are the types the pool side last got with an execute: an execute the edge's
	// cache answered never reached it, and the next one that relies on them carries them again.
	PoolTypes []byte
	LongData  bool // COM_STMT_SEND_LONG_DATA since the last execute
	Cursor    bool // an execute opened a cursor: its executes go to the origin from then on
}

// MySQL is a MySQL session's state as the edge follows it: what later answers depend on, and
// what a new pool side is told to serve the session (proxy's restoreMySQL). Each change is
// applied once the origin said OK to the command that made it (Prepared, InitDB,
// ResetConnection, Ran). Its transaction status is in the status flags of every answer, which
// the session keeps whether or not it follows the rest.
type MySQL struct {
	// DB is the database selected by USE or COM_INIT_DB (the edge's curDB); "" the session's
	// first.
	DB string
	// Names is SET NAMES or SET CHARACTER SET in force, as classify.MySQLSession.Names says it.
	Names string
	// Vars are the statements that set session system variables, in the order the origin said
	// OK to them: running them again in order on a new session gives it the same values.
	Vars []string
	// Dirty: the session changed state nobody follows (a user variable, a temporary table, a
	// variable set by an expression that may not give the same value again...).
	Dirty bool
	// Statements are the client's prepared statements by id.
	Statements map[uint32]*MySQLStatement
}

// MaxVars bounds the statements setting session variables a session follows; a session that
// sets more is dirty from then on.
const MaxVars = 32

// NewMySQL returns the state of a session that has just started.
func NewMySQL() *MySQL {
	return &MySQL{Statements: make(map[uint32]*MySQLStatement)}
}

// Note takes what a command's text does to the session (e), before it runs; followable: the
// variables it sets may be set again by running it again (proxy's followableVars). Anything
// else makes the session dirty at once. keepVars reports that the text is to join Vars once it
// succeeds (Ran).
func (s *MySQL) Note(e classify.MySQLSession, followable bool) (keepVars bool) {
	s.Dirty = s.Dirty || e.Other
	if !e.Vars || e.Other {
		return false
	}
	if followable && len(s.Vars) < MaxVars {
		return true
	}
	s.Dirty = true
	return false
}

// Ran applies a text the origin said OK to: its USE, its SET NAMES, and vars, the text itself
// when Note said to keep it ("" otherwise).
func (s *MySQL) Ran(e classify.MySQLSession, vars string) {
	if e.Use != "" {
		s.DB = e.Use
	}
	if e.Names != "" {
		s.Names = e.Names
	}
	if vars != "" {
		s.Vars = append(s.Vars, vars)
	}
}

// Prepared follows a COM_STMT_PREPARE the origin answered with PREPARE_OK.
func (s *MySQL) Prepared(id uint32, sql string, params int) {
	s.Statements[id] = &MySQLStatement{SQL: sql, DB: s.DB, Params: params}
}

// InitDB follows a COM_INIT_DB the origin said OK to.
func (s *MySQL) InitDB(db string) { s.DB = db }

// ResetConnection follows a COM_RESET_CONNECTION the origin said OK to: prepared statements,
// character set and variables go back to the session's start; the database stays.
func (s *MySQL) ResetConnection() {
	clear(s.Statements)
	s.Names, s.Vars = "", s.Vars[:0]
}

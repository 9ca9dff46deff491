package d1

import (
	"errors"
	"fmt"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// SQLSTATEs this package sends (package pgserver names those every backend sends).
const (
	codeProtocolViolation   = pgserver.CodeProtocolViolation
	codeFeatureNotSupported = pgserver.CodeFeatureNotSupported
	codeBinaryRepresent     = "22P03"
	codeInFailedTx          = "25P02"
	codeNoActiveTx          = pgserver.CodeNoActiveTx
	codeActiveTx            = pgserver.CodeActiveTx
	codeSyntaxError         = pgserver.CodeSyntaxError
	codeUndefinedObject     = pgserver.CodeUndefinedObject
	codeSerialization       = "40001"
	codeQueryCanceled       = "57014"
	codeInternal            = pgserver.CodeInternal
)

// sqlstateByPrimary maps every SQLite primary result code that reports a failure to the
// PostgreSQL SQLSTATE a client sees. init checks that no code is missing.
var sqlstateByPrimary = map[int]string{
	sqlite3.SQLITE_ERROR:      codeInternal, // refined by message, see sqlstateByMessage
	sqlite3.SQLITE_INTERNAL:   codeInternal,
	sqlite3.SQLITE_PERM:       "42501", // insufficient_privilege
	sqlite3.SQLITE_ABORT:      "57014", // query_canceled
	sqlite3.SQLITE_BUSY:       "55P03", // lock_not_available; 40001 inside a transaction
	sqlite3.SQLITE_LOCKED:     "55P03",
	sqlite3.SQLITE_NOMEM:      "53200", // out_of_memory
	sqlite3.SQLITE_READONLY:   "25006", // read_only_sql_transaction
	sqlite3.SQLITE_INTERRUPT:  codeQueryCanceled,
	sqlite3.SQLITE_IOERR:      "58030", // io_error
	sqlite3.SQLITE_CORRUPT:    "XX001", // data_corrupted
	sqlite3.SQLITE_NOTFOUND:   codeInternal,
	sqlite3.SQLITE_FULL:       "53100", // disk_full
	sqlite3.SQLITE_CANTOPEN:   "58030",
	sqlite3.SQLITE_PROTOCOL:   "55P03",
	sqlite3.SQLITE_EMPTY:      codeInternal,
	sqlite3.SQLITE_SCHEMA:     "0A000", // the schema changed under a prepared statement
	sqlite3.SQLITE_TOOBIG:     "54000", // program_limit_exceeded
	sqlite3.SQLITE_CONSTRAINT: "23000", // integrity_constraint_violation, refined below
	sqlite3.SQLITE_MISMATCH:   "42804", // datatype_mismatch
	sqlite3.SQLITE_MISUSE:     codeInternal,
	sqlite3.SQLITE_NOLFS:      "58030",
	sqlite3.SQLITE_AUTH:       "42501",
	sqlite3.SQLITE_FORMAT:     codeInternal,
	sqlite3.SQLITE_RANGE:      codeProtocolViolation, // parameter index out of range
	sqlite3.SQLITE_NOTADB:     "XX001",
}

// sqlstateByExtended refines the primary mapping.
var sqlstateByExtended = map[int]string{
	sqlite3.SQLITE_CONSTRAINT_UNIQUE:     "23505", // unique_violation
	sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY: "23505",
	sqlite3.SQLITE_CONSTRAINT_ROWID:      "23505",
	sqlite3.SQLITE_CONSTRAINT_NOTNULL:    "23502", // not_null_violation
	sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: "23503", // foreign_key_violation
	sqlite3.SQLITE_CONSTRAINT_CHECK:      "23514", // check_violation
	sqlite3.SQLITE_CONSTRAINT_TRIGGER:    "P0001", // raise_exception, as RAISE(ABORT, ...) in a trigger
	sqlite3.SQLITE_BUSY_SNAPSHOT:         codeSerialization,
}

// sqlstateByMessage refines SQLITE_ERROR, which covers every compile-time failure, by the start
// of SQLite's message.
var sqlstateByMessage = []struct{ prefix, code string }{
	{"near ", codeSyntaxError},
	{"incomplete input", codeSyntaxError},
	{"unrecognized token", codeSyntaxError},
	{"syntax error", codeSyntaxError},
	{"no such table", "42P01"},    // undefined_table
	{"no such view", "42P01"},     // undefined_table
	{"no such column", "42703"},   // undefined_column
	{"no such function", "42883"}, // undefined_function
	{"no such index", codeUndefinedObject},
	{"no such trigger", codeUndefinedObject},
	{"no such savepoint", "3B001"}, // invalid_savepoint_specification
	{"table ", "42P07"},            // "table x already exists": duplicate_table
	{"index ", "42P07"},
	{"view ", "42P07"},
	{"trigger ", "42710"}, // duplicate_object
	{"wrong number of arguments", "42883"},
	{"ambiguous column name", "42702"}, // ambiguous_column
	{"integer overflow", "22003"},      // numeric_value_out_of_range
	{"cannot start a transaction within a transaction", codeActiveTx},
	{"cannot commit - no transaction is active", codeNoActiveTx},
	{"cannot rollback - no transaction is active", codeNoActiveTx},
	{"too many SQL variables", "54023"}, // too_many_arguments
}

func init() {
	// Every primary code from SQLITE_ERROR to SQLITE_NOTADB must have a SQLSTATE.
	for rc := sqlite3.SQLITE_ERROR; rc <= sqlite3.SQLITE_NOTADB; rc++ {
		if _, ok := sqlstateByPrimary[rc]; !ok {
			panic(fmt.Sprintf("d1: SQLite result code %d has no SQLSTATE", rc))
		}
	}
}

// SQLSTATE returns the SQLSTATE a client sees for a SQLite result code (extended codes are
// reduced to their primary code), before any refinement by the error's message. Other backends
// stored in SQLite (kv) use it too.
func SQLSTATE(resultCode int) string {
	if code, ok := sqlstateByPrimary[resultCode&0xff]; ok {
		return code
	}
	return codeInternal
}

// toPG turns any failure into what the client sees. SQLite's messages name the table, column or
// constraint and hold nothing secret, so they are passed on as D1 does; anything else is reported
// without its internal text.
func toPG(err error, inTx bool) *pgserver.Error {
	var pe *pgserver.Error
	if errors.As(err, &pe) {
		return pe
	}
	var se *sqliteError
	if !errors.As(err, &se) {
		return &pgserver.Error{Code: codeInternal, Message: "internal error in the d1 backend"}
	}
	code := sqlstateByPrimary[se.code&0xff]
	if c, ok := sqlstateByExtended[se.code]; ok {
		code = c
	}
	if se.code&0xff == sqlite3.SQLITE_ERROR {
		for _, m := range sqlstateByMessage {
			if strings.HasPrefix(se.msg, m.prefix) {
				code = m.code
				break
			}
		}
		if code == "42P07" && !strings.HasSuffix(se.msg, "already exists") {
			code = codeInternal
		}
		if code == "42710" && !strings.HasSuffix(se.msg, "already exists") {
			code = codeInternal
		}
	}
	if se.code&0xff == sqlite3.SQLITE_BUSY && inTx {
		// Inside a transaction the lock can't be waited for (the snapshot would be stale): the
		// client must retry the transaction, as after a serialization failure.
		code = codeSerialization
	}
	if code == "" {
		code = codeInternal
	}
	msg := se.msg
	if se.code&0xff == sqlite3.SQLITE_INTERRUPT {
		msg = "canceling statement due to user request"
	}
	return &pgserver.Error{Code: code, Message: msg}
}

package kv

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLSTATEs this package sends.
const (
	codeProtocolViolation   = "08P01"
	codeFeatureNotSupported = "0A000"
	codeStringTooLong       = "22001" // string_data_right_truncation: a key past 512 bytes
	codeInvalidLimit        = "2201W" // invalid_row_count_in_limit_clause
	codeInvalidParameter    = "22023" // invalid_parameter_value
	codeInvalidEscape       = "22025" // invalid_escape_sequence
	codeInvalidText         = "22P02" // invalid_text_representation
	codeBinaryRepresent     = "22P03" // invalid_binary_representation
	codeNotNull             = "23502" // not_null_violation
	codeNoActiveTx          = "25P01"
	codeUnknownStatement    = "26000"
	codeUnknownPortal       = "34000"
	codeSyntaxError         = "42601"
	codeDatatypeMismatch    = "42804"
	codeDuplicatePortal     = "42P03"
	codeDuplicateStatement  = "42P05"
	codeUndefinedObject     = "42704"
	codeProgramLimit        = "54000" // program_limit_exceeded: a value or metadata too large
	codeQueryCanceled       = "57014"
	codeAdminShutdown       = "57P01"
	codeInternal            = "XX000"
)

// sqlstateBySQLite maps every SQLite primary result code that reports a failure to what the
// client sees of a storage failure. init checks that no code is missing.
var sqlstateBySQLite = map[int]string{
	sqlite3.SQLITE_ERROR:      codeInternal,
	sqlite3.SQLITE_INTERNAL:   codeInternal,
	sqlite3.SQLITE_PERM:       "42501", // insufficient_privilege
	sqlite3.SQLITE_ABORT:      codeQueryCanceled,
	sqlite3.SQLITE_BUSY:       "55P03", // lock_not_available: writers waited past the busy timeout
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
	sqlite3.SQLITE_SCHEMA:     codeInternal,
	sqlite3.SQLITE_TOOBIG:     codeProgramLimit,
	sqlite3.SQLITE_CONSTRAINT: "23000", // integrity_constraint_violation
	sqlite3.SQLITE_MISMATCH:   codeDatatypeMismatch,
	sqlite3.SQLITE_MISUSE:     codeInternal,
	sqlite3.SQLITE_NOLFS:      "58030",
	sqlite3.SQLITE_AUTH:       "42501",
	sqlite3.SQLITE_FORMAT:     codeInternal,
	sqlite3.SQLITE_RANGE:      codeInternal,
	sqlite3.SQLITE_NOTADB:     "XX001",
}

func init() {
	for rc := sqlite3.SQLITE_ERROR; rc <= sqlite3.SQLITE_NOTADB; rc++ {
		if _, ok := sqlstateBySQLite[rc]; !ok {
			panic(fmt.Sprintf("kv: SQLite result code %d has no SQLSTATE", rc))
		}
	}
}

// pgError is what a client sees of a failure: a SQLSTATE and a message.
type pgError struct {
	severity string // ERROR unless FATAL
	code     string
	msg      string
}

func (e *pgError) Error() string { return e.msg }

func errorf(code, format string, args ...any) *pgError {
	return &pgError{code: code, msg: fmt.Sprintf(format, args...)}
}

// toPG turns any failure into what the client sees. A statement the matcher refused names what
// is supported; a storage failure says what kind it was, never its internal text.
func toPG(err error) *pgError {
	var pe *pgError
	var parseErr *parseError
	var lexErr *lexError
	var se *sqlite.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &parseErr):
		return &pgError{code: codeFeatureNotSupported, msg: "kv: " + parseErr.msg + "; " + unsupportedMsg}
	case errors.As(err, &lexErr):
		return &pgError{code: codeSyntaxError, msg: lexErr.msg}
	case errors.Is(err, context.Canceled), errors.Is(err, errClosed):
		return &pgError{code: codeAdminShutdown, msg: "terminating connection: the KV namespace is closing"}
	case errors.As(err, &se):
		code := sqlstateBySQLite[se.Code()&0xff]
		if code == "" {
			code = codeInternal
		}
		return &pgError{code: code, msg: "kv: the namespace's storage failed (SQLite result code " + fmt.Sprint(se.Code()) + ")"}
	}
	return &pgError{code: codeInternal, msg: "internal error in the kv backend"}
}

// response encodes e for the wire.
func (e *pgError) response() *pgproto3.ErrorResponse {
	sev := e.severity
	if sev == "" {
		sev = "ERROR"
	}
	return &pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                e.code,
		Message:             e.msg,
	}
}

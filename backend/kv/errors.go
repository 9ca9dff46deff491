package kv

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipstream-proxy/slipstream/backend/d1"
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
	codeAdminShutdown       = "57P01"
	codeInternal            = "XX000"
)

// sqlstateOf is the SQLSTATE a client sees of a storage failure: d1's mapping of SQLite's
// result codes, except that a parameter out of range or a changed schema can only be kv's own
// fault here (it binds its own parameters to its one fixed table), so those are internal errors.
func sqlstateOf(resultCode int) string {
	switch resultCode & 0xff {
	case sqlite3.SQLITE_RANGE, sqlite3.SQLITE_SCHEMA:
		return codeInternal
	}
	return d1.SQLSTATE(resultCode)
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
		return &pgError{code: sqlstateOf(se.Code()), msg: "kv: the namespace's storage failed (SQLite result code " + fmt.Sprint(se.Code()) + ")"}
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

package kv

import (
	"context"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipstream-proxy/slipstream/backend/d1"
	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// SQLSTATEs this package sends (package pgserver names those every backend sends).
const (
	codeFeatureNotSupported = pgserver.CodeFeatureNotSupported
	codeStringTooLong       = "22001" // string_data_right_truncation: a key past 512 bytes
	codeInvalidLimit        = "2201W" // invalid_row_count_in_limit_clause
	codeInvalidParameter    = "22023" // invalid_parameter_value
	codeInvalidEscape       = "22025" // invalid_escape_sequence
	codeInvalidText         = "22P02" // invalid_text_representation
	codeBinaryRepresent     = "22P03" // invalid_binary_representation
	codeNotNull             = "23502" // not_null_violation
	codeNoActiveTx          = pgserver.CodeNoActiveTx
	codeSyntaxError         = pgserver.CodeSyntaxError
	codeDatatypeMismatch    = "42804"
	codeUndefinedObject     = pgserver.CodeUndefinedObject
	codeProgramLimit        = "54000" // program_limit_exceeded: a value or metadata too large
	codeAdminShutdown       = pgserver.CodeAdminShutdown
	codeInternal            = pgserver.CodeInternal
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

// toPG turns any failure into what the client sees. A statement the matcher refused names what
// is supported; a storage failure says what kind it was, never its internal text.
func toPG(err error) *pgserver.Error {
	var pe *pgserver.Error
	var parseErr *parseError
	var lexErr *pgserver.LexError
	var se *sqlite.Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &parseErr):
		return &pgserver.Error{Code: codeFeatureNotSupported, Message: "kv: " + parseErr.msg + "; " + unsupportedMsg}
	case errors.As(err, &lexErr):
		return &pgserver.Error{Code: codeSyntaxError, Message: lexErr.Msg}
	case errors.Is(err, context.Canceled), errors.Is(err, errClosed):
		return &pgserver.Error{Code: codeAdminShutdown, Message: "terminating connection: the KV namespace is closing"}
	case errors.As(err, &se):
		return &pgserver.Error{Code: sqlstateOf(se.Code()), Message: "kv: the namespace's storage failed (SQLite result code " + fmt.Sprint(se.Code()) + ")"}
	}
	return &pgserver.Error{Code: codeInternal, Message: "internal error in the kv backend"}
}

package pgwire

import "strings"

// Code is a PostgreSQL SQLSTATE, five characters from [0-9A-Z].
type Code string

// The SQLSTATEs Slipstream sends. Each one must also be in the codes table below.
const (
	FeatureNotSupported                           Code = "0A000" // feature_not_supported
	SQLServerRejectedEstablishmentOfSQLConnection Code = "08004" // sqlserver_rejected_establishment_of_sqlconnection
	ConnectionFailure                             Code = "08006" // connection_failure
	ProtocolViolation                             Code = "08P01" // protocol_violation
	InvalidSQLStatementName                       Code = "26000" // invalid_sql_statement_name
	InvalidAuthorizationSpecification             Code = "28000" // invalid_authorization_specification
	InvalidPassword                               Code = "28P01" // invalid_password
	InvalidCatalogName                            Code = "3D000" // invalid_catalog_name
	DuplicatePreparedStatement                    Code = "42P05" // duplicate_prepared_statement
	TooManyConnections                            Code = "53300" // too_many_connections
	QueryCanceled                                 Code = "57014" // query_canceled
	AdminShutdown                                 Code = "57P01" // admin_shutdown
	CannotConnectNow                              Code = "57P03" // cannot_connect_now
	InternalError                                 Code = "XX000" // internal_error
)

// codes is the one table of SQLSTATEs we send, with PostgreSQL's condition names
// (src/backend/utils/errcodes.txt). The names are a bounded set, fit for metric labels.
// init checks the table; TestEveryCodeIsInTheTable checks the constants against it.
var codes = [...]struct {
	code Code
	name string
}{
	{FeatureNotSupported, "feature_not_supported"},
	{SQLServerRejectedEstablishmentOfSQLConnection, "sqlserver_rejected_establishment_of_sqlconnection"},
	{ConnectionFailure, "connection_failure"},
	{ProtocolViolation, "protocol_violation"},
	{InvalidSQLStatementName, "invalid_sql_statement_name"},
	{InvalidAuthorizationSpecification, "invalid_authorization_specification"},
	{InvalidPassword, "invalid_password"},
	{InvalidCatalogName, "invalid_catalog_name"},
	{DuplicatePreparedStatement, "duplicate_prepared_statement"},
	{TooManyConnections, "too_many_connections"},
	{QueryCanceled, "query_canceled"},
	{AdminShutdown, "admin_shutdown"},
	{CannotConnectNow, "cannot_connect_now"},
	{InternalError, "internal_error"},
}

var codeNames = make(map[Code]string, len(codes))

func init() {
	names := make(map[string]bool, len(codes))
	for _, c := range codes {
		if !validCode(c.code) {
			panic("pgwire: malformed SQLSTATE " + string(c.code) + " in codes table")
		}
		if _, dup := codeNames[c.code]; dup {
			panic("pgwire: SQLSTATE " + string(c.code) + " twice in codes table")
		}
		if c.name == "" || names[c.name] {
			panic("pgwire: missing or repeated condition name for SQLSTATE " + string(c.code))
		}
		codeNames[c.code] = c.name
		names[c.name] = true
	}
}

func validCode(c Code) bool {
	if len(c) != 5 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if (c[i] < '0' || c[i] > '9') && (c[i] < 'A' || c[i] > 'Z') {
			return false
		}
	}
	return true
}

// Name returns PostgreSQL's condition name for c, such as "invalid_password", or "" if c is not
// one of the codes Slipstream sends.
func (c Code) Name() string { return codeNames[c] }

// Severities of an Error.
const (
	SeverityError = "ERROR" // the statement fails, the session goes on
	SeverityFatal = "FATAL" // the session ends after the error is sent
)

// Error is an error meant for the client, sent as an ErrorResponse. Its text is written for the
// client: never put an internal err.Error() or a secret in it.
type Error struct {
	Severity string // SeverityError or SeverityFatal
	Code     Code
	Message  string
	Detail   string // optional
	Hint     string // optional
}

// Fatal returns an error that ends the session.
func Fatal(code Code, msg string) *Error {
	return &Error{Severity: SeverityFatal, Code: code, Message: msg}
}

// NewError returns an error that fails the current statement only.
func NewError(code Code, msg string) *Error {
	return &Error{Severity: SeverityError, Code: code, Message: msg}
}

// Error formats e as pgconn does: "FATAL: message (SQLSTATE 28P01)".
func (e *Error) Error() string {
	return e.Severity + ": " + e.Message + " (SQLSTATE " + string(e.Code) + ")"
}

// AppendError appends an ErrorResponse ('E') frame for e to dst.
func AppendError(dst []byte, e *Error) []byte {
	dst, at := BeginFrame(dst, 'E')
	dst = appendField(dst, 'S', e.Severity)
	dst = appendField(dst, 'V', e.Severity) // the untranslated severity, since PostgreSQL 9.6
	dst = appendField(dst, 'C', string(e.Code))
	dst = appendField(dst, 'M', e.Message)
	if e.Detail != "" {
		dst = appendField(dst, 'D', e.Detail)
	}
	if e.Hint != "" {
		dst = appendField(dst, 'H', e.Hint)
	}
	dst = append(dst, 0)
	return FinishFrame(dst, at)
}

func appendField(dst []byte, typ byte, s string) []byte {
	dst = append(dst, typ)
	dst = appendCString(dst, s)
	return dst
}

// appendCString appends s and a NUL. A NUL inside s would end the string early on the wire and
// shift every field after it, so it is dropped.
func appendCString(dst []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, 0)
}

// Transaction status bytes of ReadyForQuery.
const (
	TxIdle   byte = 'I' // not in a transaction block
	TxActive byte = 'T' // in a transaction block
	TxFailed byte = 'E' // in a failed transaction block
)

// AppendReadyForQuery appends a ReadyForQuery ('Z') frame with the given transaction status.
func AppendReadyForQuery(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
}

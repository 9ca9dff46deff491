package pgserver

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SQLSTATEs the emulation sends, and those both backends send for the same reasons.
const (
	CodeProtocolViolation   = "08P01"
	CodeFeatureNotSupported = "0A000"
	CodeInvalidAuthSpec     = "28000" // invalid_authorization_specification
	CodeCantChangeParam     = "55P02" // cant_change_runtime_param
	CodeNoActiveTx          = "25P01"
	CodeActiveTx            = "25001"
	CodeUnknownStatement    = "26000"
	CodeUnknownPortal       = "34000"
	CodeSyntaxError         = "42601"
	CodeDuplicatePortal     = "42P03"
	CodeDuplicateStatement  = "42P05"
	CodeUndefinedObject     = "42704"
	CodeAdminShutdown       = "57P01"
	CodeInternal            = "XX000"
)

// Error is what a client sees of a failure: a SQLSTATE and a message, and where in the
// statement it was.
type Error struct {
	Severity string // ERROR unless FATAL
	Code     string
	Message  string
	Position int // 1-based character offset into the statement text, 0 for none
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an Error with the SQLSTATE code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Response encodes e for the wire.
func (e *Error) Response() *pgproto3.ErrorResponse {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	return &pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                e.Code,
		Message:             e.Message,
		Position:            int32(e.Position),
	}
}

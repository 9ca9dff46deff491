package mysqlpool

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// maxPayload is the largest payload of one physical packet; a logical packet of this length
// or more continues in the next packet.
const maxPayload = 1<<24 - 1

// Header bytes that start packets in responses.
const (
	hdrOK     = 0x00
	hdrInfile = 0xfb
	hdrEOF    = 0xfe
	hdrERR    = 0xff
)

// Server status flags (SERVER_STATUS_* in mysql_com.h).
const (
	statusInTrans     uint16 = 0x0001
	statusAutocommit  uint16 = 0x0002
	statusMoreResults uint16 = 0x0008
	statusCursor      uint16 = 0x0040
	statusLastRowSent uint16 = 0x0080
)

// errMalformed means a packet from the origin does not parse; the session using the
// connection ends and the connection is dropped.
var errMalformed = errors.New("mysqlpool: malformed packet from the origin")

// lenenc reads a length-encoded integer at the start of b and returns it and its size; n is 0
// when b is too short or starts with a byte that is not a length prefix (0xfb, 0xff).
func lenenc(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	switch b[0] {
	case 0xfc:
		if len(b) < 3 {
			return 0, 0
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfd:
		if len(b) < 4 {
			return 0, 0
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case 0xfe:
		if len(b) < 9 {
			return 0, 0
		}
		return binary.LittleEndian.Uint64(b[1:]), 9
	case 0xfb, 0xff:
		return 0, 0
	}
	return uint64(b[0]), 1
}

// appendLenenc appends v as a length-encoded integer.
func appendLenenc(dst []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(dst, byte(v))
	case v < 1<<16:
		return append(dst, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(dst, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(dst, 0xfe), v)
}

// okStatus returns the status flags of an OK packet (header 0x00 or 0xfe) or of a classic
// 5-byte EOF packet.
func okStatus(p []byte) (uint16, bool) {
	if len(p) == 5 && p[0] == hdrEOF { // EOF: header, warnings, status
		return binary.LittleEndian.Uint16(p[3:]), true
	}
	if len(p) < 7 {
		return 0, false
	}
	_, n1 := lenenc(p[1:])
	if n1 == 0 {
		return 0, false
	}
	_, n2 := lenenc(p[1+n1:])
	if n2 == 0 || len(p) < 1+n1+n2+2 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p[1+n1+n2:]), true
}

// okWarnings returns the warning count of an OK packet or of a classic EOF packet.
func okWarnings(p []byte) uint16 {
	if len(p) == 5 && p[0] == hdrEOF {
		return binary.LittleEndian.Uint16(p[1:])
	}
	if len(p) < 7 {
		return 0
	}
	_, n1 := lenenc(p[1:])
	if n1 == 0 {
		return 0
	}
	_, n2 := lenenc(p[1+n1:])
	if o := 1 + n1 + n2 + 2; n2 > 0 && len(p) >= o+2 {
		return binary.LittleEndian.Uint16(p[o:])
	}
	return 0
}

// beginPacket appends a packet header with sequence id seq and returns where it starts; finish
// the packet with finishPacket once its payload (less than maxPayload) is appended.
func beginPacket(dst []byte, seq byte) ([]byte, int) {
	return append(dst, 0, 0, 0, seq), len(dst)
}

func finishPacket(dst []byte, at int) []byte {
	n := len(dst) - at - 4
	dst[at], dst[at+1], dst[at+2] = byte(n), byte(n>>8), byte(n>>16)
	return dst
}

// appendCommand appends a one-packet command (sequence id 0) with body after the command byte.
func appendCommand(dst []byte, cmd byte, body []byte) []byte {
	dst, at := beginPacket(dst, 0)
	dst = append(append(dst, cmd), body...)
	return finishPacket(dst, at)
}

// appendOK appends an OK packet with sequence id seq and the given status flags.
func appendOK(dst []byte, seq byte, status uint16) []byte {
	dst, at := beginPacket(dst, seq)
	dst = append(dst, hdrOK, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, status)
	dst = append(dst, 0, 0)
	return finishPacket(dst, at)
}

// appendEnd appends the packet that ends a run of rows or answers COM_SET_OPTION: an EOF, or an
// OK with the EOF header under CLIENT_DEPRECATE_EOF.
func appendEnd(dst []byte, seq byte, status uint16, deprecateEOF bool) []byte {
	dst, at := beginPacket(dst, seq)
	if deprecateEOF {
		dst = append(dst, hdrEOF, 0, 0)
		dst = binary.LittleEndian.AppendUint16(dst, status)
		dst = append(dst, 0, 0)
	} else {
		dst = append(dst, hdrEOF, 0, 0)
		dst = binary.LittleEndian.AppendUint16(dst, status)
	}
	return finishPacket(dst, at)
}

// appendERR appends an ERR packet with sequence id seq.
func appendERR(dst []byte, seq byte, e *sqlError) []byte {
	dst, at := beginPacket(dst, seq)
	dst = append(dst, hdrERR)
	dst = binary.LittleEndian.AppendUint16(dst, e.Code)
	dst = append(append(append(dst, '#'), e.State...), e.Message...)
	return finishPacket(dst, at)
}

// sqlError is a MySQL error the pool answers a client with itself.
type sqlError struct {
	Code    uint16
	State   string // SQLSTATE, 5 characters
	Message string
}

func (e *sqlError) Error() string { return e.Message }

// unknownStmt is MariaDB's error for a COM_STMT_* command naming statement id (as the client
// sent it) that the session does not have.
func unknownStmt(id uint32, code byte) *sqlError {
	fn := "mysqld_stmt_execute"
	switch code {
	case mysql.COM_STMT_FETCH:
		fn = "mysqld_stmt_fetch"
	case mysql.COM_STMT_RESET:
		fn = "mysqld_stmt_reset"
	}
	return &sqlError{Code: 1243, State: "HY000",
		Message: "Unknown prepared statement handler (" + strconv.FormatUint(uint64(id), 10) + ") given to " + fn}
}

// The errors the pool sends clients, each with its real MySQL code and SQLSTATE.
var (
	errOriginDown = &sqlError{Code: 1105, State: "HY000", Message: "could not connect to the origin database"}
	errShutdown   = &sqlError{Code: 1053, State: "08S01", Message: "slipstream is shutting down"}
	errUnknownCmd = &sqlError{Code: 1047, State: "08S01", Message: "Unknown command"}
	errChangeUser = &sqlError{Code: 1047, State: "08S01", Message: "malformed COM_CHANGE_USER"}
	errSetOption  = &sqlError{Code: 1047, State: "08S01", Message: "Unknown command"}
)

package mysqlwire

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Code is a MySQL server error number.
type Code uint16

// The error numbers the edge sends. Each one must also be in the codes table below.
const (
	ErConCount             Code = mysql.ER_CON_COUNT_ERROR          // 1040 Too many connections
	ErHandshake            Code = mysql.ER_HANDSHAKE_ERROR          // 1043 Bad handshake
	ErAccessDenied         Code = mysql.ER_ACCESS_DENIED_ERROR      // 1045
	ErNoDB                 Code = mysql.ER_NO_DB_ERROR              // 1046 No database selected
	ErUnknownCom           Code = mysql.ER_UNKNOWN_COM_ERROR        // 1047 Unknown command
	ErBadDB                Code = mysql.ER_BAD_DB_ERROR             // 1049 Unknown database
	ErServerShutdown       Code = mysql.ER_SERVER_SHUTDOWN          // 1053
	ErNoSuchThread         Code = mysql.ER_NO_SUCH_THREAD           // 1094 Unknown thread id
	ErKillDenied           Code = mysql.ER_KILL_DENIED_ERROR        // 1095 You are not owner of thread
	ErUnknown              Code = mysql.ER_UNKNOWN_ERROR            // 1105
	ErNetPacketTooLarge    Code = mysql.ER_NET_PACKET_TOO_LARGE     // 1153
	ErNetPacketsOutOfOrder Code = mysql.ER_NET_PACKETS_OUT_OF_ORDER // 1156
	ErNetReadError         Code = mysql.ER_NET_READ_ERROR           // 1158
	ErNotSupportedAuthMode Code = mysql.ER_NOT_SUPPORTED_AUTH_MODE  // 1251
	ErQueryInterrupted     Code = mysql.ER_QUERY_INTERRUPTED        // 1317
)

// codes is the one table of errors we send: number, SQLSTATE and MySQL's symbol, which is a
// bounded set fit for metric labels. init checks it, against go-mysql's tables too.
var codes = [...]struct {
	code  Code
	state string
	name  string
}{
	{ErConCount, "08004", "ER_CON_COUNT_ERROR"},
	{ErHandshake, "08S01", "ER_HANDSHAKE_ERROR"},
	{ErAccessDenied, "28000", "ER_ACCESS_DENIED_ERROR"},
	{ErNoDB, "3D000", "ER_NO_DB_ERROR"},
	{ErUnknownCom, "08S01", "ER_UNKNOWN_COM_ERROR"},
	{ErBadDB, "42000", "ER_BAD_DB_ERROR"},
	{ErServerShutdown, "08S01", "ER_SERVER_SHUTDOWN"},
	{ErNoSuchThread, "HY000", "ER_NO_SUCH_THREAD"},
	{ErKillDenied, "HY000", "ER_KILL_DENIED_ERROR"},
	{ErUnknown, "HY000", "ER_UNKNOWN_ERROR"},
	{ErNetPacketTooLarge, "08S01", "ER_NET_PACKET_TOO_LARGE"},
	{ErNetPacketsOutOfOrder, "08S01", "ER_NET_PACKETS_OUT_OF_ORDER"},
	{ErNetReadError, "08S01", "ER_NET_READ_ERROR"},
	{ErNotSupportedAuthMode, "08004", "ER_NOT_SUPPORTED_AUTH_MODE"},
	{ErQueryInterrupted, "70100", "ER_QUERY_INTERRUPTED"},
}

type codeInfo struct{ state, name string }

var codeTable = make(map[Code]codeInfo, len(codes))

func init() {
	names := make(map[string]bool, len(codes))
	for _, c := range codes {
		if len(c.state) != 5 {
			panic(fmt.Sprintf("mysqlwire: SQLSTATE %q of %d is not five characters", c.state, c.code))
		}
		if want, ok := mysql.MySQLState[uint16(c.code)]; ok && want != c.state {
			panic(fmt.Sprintf("mysqlwire: SQLSTATE of %d is %s in the codes table, %s in MySQL's", c.code, c.state, want))
		}
		if _, ok := mysql.MySQLErrName[uint16(c.code)]; !ok {
			panic(fmt.Sprintf("mysqlwire: %d is not a MySQL error number", c.code))
		}
		if _, dup := codeTable[c.code]; dup || c.name == "" || names[c.name] {
			panic(fmt.Sprintf("mysqlwire: %d twice, or its name %q empty or twice, in the codes table", c.code, c.name))
		}
		names[c.name] = true
		codeTable[c.code] = codeInfo{c.state, c.name}
	}
}

// State returns the SQLSTATE of c ("HY000" for a number not in the table).
func (c Code) State() string {
	if i, ok := codeTable[c]; ok {
		return i.state
	}
	return mysql.DEFAULT_MYSQL_STATE
}

// Name returns MySQL's symbol for c, such as "ER_ACCESS_DENIED_ERROR"; "" if c is not in the
// table.
func (c Code) Name() string { return codeTable[c].name }

// Error is an error for the client: an ERR packet.
type Error struct {
	Code    Code
	Message string
}

// NewError returns an error with code and message; the message is the client's to read.
func NewError(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Errorf returns an error whose message is MySQL's own message format for code (as in
// go-mysql's table), filled in with args.
func Errorf(code Code, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(mysql.MySQLErrName[uint16(code)], args...)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.Code.State(), e.Message)
}

// AppendError appends an ERR packet with sequence id seq, in the CLIENT_PROTOCOL_41 form
// (the only form this package negotiates).
func AppendError(dst []byte, seq byte, e *Error) []byte {
	dst, h := BeginPacket(dst, seq)
	dst = append(dst, 0xff, byte(e.Code), byte(e.Code>>8), '#')
	dst = append(dst, e.Code.State()...)
	msg := e.Message
	if len(msg) > 512 {
		msg = msg[:512]
	}
	dst = append(dst, msg...)
	return FinishPacket(dst, h)
}

// AppendOK appends an OK packet with no affected rows, the given status flags and no
// warnings. With CLIENT_SESSION_TRACK in caps it carries an empty info string, as servers do;
// it never carries session state, so SERVER_SESSION_STATE_CHANGED is cleared.
func AppendOK(dst []byte, seq byte, status uint16) []byte {
	status &^= mysql.SERVER_SESSION_STATE_CHANGED
	dst, h := BeginPacket(dst, seq)
	dst = append(dst, 0x00, 0, 0, byte(status), byte(status>>8), 0, 0)
	return FinishPacket(dst, h)
}

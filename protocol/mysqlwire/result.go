package mysqlwire

import (
	"encoding/binary"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// LenencLen is the length of the length-encoded integer at the start of p; 0 if malformed.
func LenencLen(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	switch p[0] {
	case 0xfc:
		return 3
	case 0xfd:
		return 4
	case 0xfe:
		return 9
	case 0xfb, 0xff:
		return 0
	}
	return 1
}

// ServerStatusAnsiQuotes is MariaDB's SERVER_STATUS_ANSI_QUOTES (go-mysql lacks it): the
// session's sql_mode has ANSI_QUOTES. MariaDB sets it in every OK and EOF it sends.
const ServerStatusAnsiQuotes uint16 = 0x8000

// SessionStatus are the status flags that describe the session rather than one answer: those
// an answer the proxy makes up itself (COM_PING's OK, say) repeats from the session's last
// answer, as the origin would. The rest (index use, cursor, more results...) were about the
// statement that drew them.
const SessionStatus = mysql.SERVER_STATUS_IN_TRANS | mysql.SERVER_STATUS_AUTOCOMMIT |
	mysql.SERVER_STATUS_NO_BACKSLASH_ESCAPED | mysql.SERVER_STATUS_IN_TRANS_READONLY | ServerStatusAnsiQuotes

// notReplayable are the status flags of a result set's closing packet that tie it to the
// session that got it.
const notReplayable = mysql.SERVER_STATUS_IN_TRANS | mysql.SERVER_MORE_RESULTS_EXISTS | mysql.SERVER_STATUS_CURSOR_EXISTS |
	mysql.SERVER_STATUS_DB_DROPPED | mysql.SERVER_SESSION_STATE_CHANGED | mysql.SERVER_PS_OUT_PARAMS

// ReplayableResult reports whether packets (whole, headers included) are one complete result
// set, numbered from sequence id 1, whose closing EOF (or the OK in its place, with
// CLIENT_DEPRECATE_EOF) says autocommit is on and nothing else: no transaction, no warnings, no
// further result sets, no open cursor, no session state change. Such an answer may be given
// again, as it is, to another session that sends the same command (the result caches').
func ReplayableResult(packets []byte) bool {
	b := packets
	if len(b) <= HeaderLen || b[3] != 1 {
		return false
	}
	switch b[HeaderLen] {
	case 0x00, 0xff, 0xfb: // OK, ERR, LOCAL INFILE request: not a result set
		return false
	}
	var last []byte
	for len(b) >= HeaderLen {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if HeaderLen+n > len(b) {
			return false
		}
		last, b = b[HeaderLen:HeaderLen+n], b[HeaderLen+n:]
	}
	if len(b) != 0 || len(last) == 0 || last[0] != 0xfe || len(last) >= 0xffffff {
		return false
	}
	var warnings, status uint16
	if len(last) == 5 { // EOF: warnings, status
		warnings, status = binary.LittleEndian.Uint16(last[1:]), binary.LittleEndian.Uint16(last[3:])
	} else { // OK in EOF's place: affected rows, insert id (length-encoded), status, warnings
		q := last[1:]
		for range 2 {
			k := LenencLen(q)
			if k == 0 || k > len(q) {
				return false
			}
			q = q[k:]
		}
		if len(q) < 4 {
			return false
		}
		status, warnings = binary.LittleEndian.Uint16(q), binary.LittleEndian.Uint16(q[2:])
	}
	return warnings == 0 && status&notReplayable == 0 && status&mysql.SERVER_STATUS_AUTOCOMMIT != 0
}

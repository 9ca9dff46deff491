package mysqlwire

import (
	"encoding/binary"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// packet frames payload with sequence id seq.
func packet(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// resultSet is a one-column, one-row text result set closed by end.
func resultSet(end []byte) []byte {
	var b []byte
	b = append(b, packet(1, 1)...)                                                     // column count
	b = append(b, packet(2, []byte("\x03def\x00\x00\x00\x01c\x00\x0c\x21\x00")...)...) // a column (shortened)
	b = append(b, packet(3, 0xfe, 0, 0, 2, 0)...)                                      // EOF after the columns
	b = append(b, packet(4, 1, '7')...)                                                // the row
	return append(b, packet(5, end...)...)
}

func eof(warnings, status uint16) []byte {
	b := []byte{0xfe}
	b = binary.LittleEndian.AppendUint16(b, warnings)
	return binary.LittleEndian.AppendUint16(b, status)
}

func okInEOFsPlace(status, warnings uint16) []byte {
	b := []byte{0xfe, 0, 0} // affected rows, last insert id
	b = binary.LittleEndian.AppendUint16(b, status)
	return binary.LittleEndian.AppendUint16(b, warnings)
}

func TestReplayableResult(t *testing.T) {
	auto := uint16(mysql.SERVER_STATUS_AUTOCOMMIT)
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"EOF, autocommit", resultSet(eof(0, auto)), true},
		{"OK in EOF's place, autocommit", resultSet(okInEOFsPlace(auto, 0)), true},
		{"in a transaction", resultSet(eof(0, auto|mysql.SERVER_STATUS_IN_TRANS)), false},
		{"autocommit off", resultSet(eof(0, 0)), false},
		{"a warning", resultSet(eof(1, auto)), false},
		{"more results follow", resultSet(eof(0, auto|mysql.SERVER_MORE_RESULTS_EXISTS)), false},
		{"a cursor", resultSet(eof(0, auto|mysql.SERVER_STATUS_CURSOR_EXISTS)), false},
		{"session state changed", resultSet(okInEOFsPlace(auto|mysql.SERVER_SESSION_STATE_CHANGED, 0)), false},
		{"an OK", packet(1, 0, 0, 0, 2, 0, 0, 0), false},
		{"an ERR", packet(1, 0xff, 0x7a, 0x04, '#', 'H', 'Y', '0', '0', '0'), false},
		{"numbered from 0", append(packet(0, 1), resultSet(eof(0, auto))[5:]...), false},
		{"cut short", resultSet(eof(0, auto))[:20], false},
		{"a bad length-encoded integer", resultSet([]byte{0xfe, 0xff, 0, 2, 0, 0, 0}), false},
		{"empty", nil, false},
	} {
		if got := ReplayableResult(c.b); got != c.want {
			t.Errorf("%s: ReplayableResult = %v, want %v", c.name, got, c.want)
		}
	}
}

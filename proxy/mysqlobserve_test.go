package proxy

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// myPackets frames payloads as MySQL packets, sequence ids from 1.
func myPackets(payloads ...[]byte) []byte {
	var out []byte
	for i, p := range payloads {
		out = append(out, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), byte(i+1))
		out = append(out, p...)
	}
	return out
}

func TestTheAnswerScanCountsStatementsRowsAndErrors(t *testing.T) {
	more := byte(mysql.SERVER_MORE_RESULTS_EXISTS)
	ok := func(affected byte, status byte) []byte { return []byte{0, affected, 0, status, 0, 0, 0} }
	eof := func(status byte) []byte { return []byte{0xfe, 0, 0, status, 0} }
	okEnd := func(status byte) []byte { return []byte{0xfe, 0, 0, status, 0, 0, 0} }
	col := []byte{3, 'd', 'e', 'f', 0, 0, 0, 1, 'a', 0, 0x0c, 33, 0, 1, 0, 0, 0, 0xfd, 0, 0, 0, 0}
	row := []byte{1, 'x'}
	for _, tc := range []struct {
		name         string
		deprecateEOF bool
		answer       []byte
		statements   int
		rows         int64
		failed       bool
	}{
		{"an OK packet is a statement with its affected rows", false, myPackets(ok(3, 2)), 1, 3, false},
		{"a result set's rows are counted up to its EOF", false, myPackets([]byte{1}, col, eof(2), row, row, eof(2)), 1, 2, false},
		{"without EOF packets the OK with the EOF header ends it", true, myPackets([]byte{1}, col, row, row, row, okEnd(2)), 1, 3, false},
		{"an ERR packet is a failure", false, myPackets([]byte{0xff, 0x28, 0x04, '#', 'H', 'Y', '0', '0', '0', 'x'}), 0, 0, true},
		{"a multi-statement answer counts each statement", false,
			myPackets(ok(1, 2|more), []byte{1}, col, eof(2|more), row, eof(2|more), ok(0, 2)), 3, 2, false},
		{"with EOF packets, a packet of 9 bytes or more that starts with 0xfe is a row", false,
			myPackets([]byte{1}, col, eof(2), append([]byte{0xfe}, make([]byte, 9)...), eof(2)), 1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Fed whole, and byte by byte: chunks split packets anywhere.
			for _, step := range []int{len(tc.answer), 1} {
				s := myAnswerScan{deprecateEOF: tc.deprecateEOF}
				for i := 0; i < len(tc.answer); i += step {
					s.feed(tc.answer[i:min(i+step, len(tc.answer))])
				}
				if s.statements != tc.statements || s.rows != tc.rows || s.failed != tc.failed {
					t.Errorf("chunks of %d: %d statements, %d rows, failed %v; want %d, %d, %v", step,
						s.statements, s.rows, s.failed, tc.statements, tc.rows, tc.failed)
				}
			}
		})
	}
}

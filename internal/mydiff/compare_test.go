package mydiff

import (
	"encoding/binary"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// warningRow is a text row of SHOW WARNINGS.
func warningRow(level, code, msg string) Packet {
	var p []byte
	for _, c := range []string{level, code, msg} {
		p = append(p, mysql.PutLengthEncodedString([]byte(c))...)
	}
	return Packet{Seqs: []byte{5}, Payload: p, Role: RoleRow}
}

// prepareOK is the first packet of a prepare's answer, for statement id.
func prepareOK(id uint32) Packet {
	p := binary.LittleEndian.AppendUint32([]byte{0}, id)
	return Packet{Seqs: []byte{1}, Payload: append(p, 0, 0, 0, 0, 0, 0, 0), Role: RolePrepare}
}

// TestStatementIDsInWarningsAreComparedByOrderOfAppearance: MariaDB numbers statements from
// one counter for all connections, Slipstream's edge per session; SHOW WARNINGS after an
// error naming a statement quotes its id, compared as in the ERR itself (found by
// FuzzMySQLAnswersAsMariaDB: a harness difference, not Slipstream's).
func TestStatementIDsInWarningsAreComparedByOrderOfAppearance(t *testing.T) {
	transcript := func(id uint32, row Packet) *Transcript {
		return &Transcript{Exchanges: []Exchange{
			{Step: Step{Line: 1, Text: "prepare s0 SELECT 1"}, Packets: []Packet{prepareOK(id)}},
			{Step: Step{Line: 2, Text: "query SHOW WARNINGS"}, Packets: []Packet{row}},
		}}
	}
	msg := func(id string) string {
		return "Unknown prepared statement handler (" + id + ") given to mysqld_stmt_execute"
	}
	tests := []struct {
		name      string
		want, got *Transcript
		differ    bool
	}{
		{"the same statement", transcript(439, warningRow("Error", "1243", msg("439"))),
			transcript(2, warningRow("Error", "1243", msg("2"))), false},
		{"another statement", transcript(439, warningRow("Error", "1243", msg("439"))),
			transcript(2, warningRow("Error", "1243", msg("4"))), true},
		{"another code is compared as it is", transcript(439, warningRow("Error", "1064", msg("439"))),
			transcript(2, warningRow("Error", "1064", msg("2"))), true},
	}
	for _, tt := range tests {
		if d := Compare(tt.want, tt.got); (len(d) > 0) != tt.differ {
			t.Errorf("%s: differences %q, want some: %v", tt.name, d, tt.differ)
		}
	}
}

package mysqlpool

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestLastInsertIDIsTheSessionsOwnOnAnyConnection(t *testing.T) {
	for _, caps := range []uint32{clientCaps, clientCaps | mysql.CLIENT_DEPRECATE_EOF} {
		p := newPool(t, Config{MaxConns: 1})
		a, b := open(t, p, caps), open(t, p, caps)
		a.exec("CREATE TABLE IF NOT EXISTS t_ids (id int auto_increment primary key, v int)")
		a.exec("BEGIN")
		a.exec("INSERT INTO t_ids (v) VALUES (1)")
		// In a transaction the origin answers: that is the answer to match.
		origin := a.exec("SELECT LAST_INSERT_ID()")
		a.exec("COMMIT")
		made := a.exec("SELECT LAST_INSERT_ID()")
		if len(origin) != len(made) {
			t.Fatalf("made up %d packets, the origin sent %d", len(made), len(origin))
		}
		for i := range origin {
			o, m := origin[i], made[i]
			if i == len(origin)-1 || i == 2 && caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
				continue // status flags differ: one was inside the transaction
			}
			if !bytes.Equal(o, m) {
				t.Errorf("packet %d: made up %q, the origin sent %q", i, m, o)
			}
		}
		want := textRows(t, origin, a.s.deprecateEOF)[0][0]
		// The same through a prepared statement, binary.
		id := a.prepare("SELECT LAST_INSERT_ID()")
		a.exec("BEGIN")
		a.exec("INSERT INTO t_ids (v) VALUES (3)")
		originBin := a.mustRT(executePacket(id, 0, true))
		a.exec("COMMIT")
		madeBin := a.mustRT(executePacket(id, 0, true))
		if len(originBin) != len(madeBin) {
			t.Fatalf("binary: made up %d packets, the origin sent %d", len(madeBin), len(originBin))
		}
		for i := range originBin {
			if i == len(originBin)-1 || i == 2 && caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
				continue
			}
			if !bytes.Equal(originBin[i], madeBin[i]) {
				t.Errorf("binary packet %d: made up %q, the origin sent %q", i, madeBin[i], originBin[i])
			}
		}
		want = strconv.FormatUint(binary.LittleEndian.Uint64(madeBin[len(madeBin)-2][2:]), 10)
		b.exec("INSERT INTO t_ids (v) VALUES (2)") // on the same connection
		if got := a.value("select last_insert_id() AS `id`"); got != want {
			t.Errorf("after b's insert a's LAST_INSERT_ID() = %s, want %s", got, want)
		}
		if got := open(t, p, caps).value("SELECT @@identity"); got != "0" {
			t.Errorf("a new session's @@identity = %s, want 0", got)
		}
	}
}

package d1

import (
	"path/filepath"
	"testing"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver/mysqltest"
)

// FuzzMySQLSession feeds arbitrary bytes to a MySQL protocol session after the handshake: it
// must neither panic nor hang, whatever arrives.
func FuzzMySQLSession(f *testing.F) {
	f.Add(mysqltest.Command(0x03, "CREATE TABLE IF NOT EXISTS f (a INTEGER PRIMARY KEY, b TEXT, c BLOB)"))
	f.Add(append(mysqltest.Command(0x03, "INSERT INTO f VALUES (1, 'x', _binary'\x00')"), mysqltest.Command(0x03, "SELECT * FROM f")...))
	f.Add(append(mysqltest.Command(0x16, "SELECT a, b FROM f WHERE a = ? AND b = ?"),
		mysqltest.Packet(0, 0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 0xfe, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 'x')...))
	f.Add(append(mysqltest.Command(0x16, "INSERT INTO f (b, c) VALUES (?, ?)"), mysqltest.Command(0x19, "\x01\x00\x00\x00")...))
	f.Add(append(mysqltest.Command(0x03, "BEGIN"), append(mysqltest.Command(0x03, "SET autocommit=0"), mysqltest.Command(0x03, "ROLLBACK")...)...))
	f.Add(append(mysqltest.Command(0x03, "SELECT @@version_comment LIMIT 1"), mysqltest.Command(0x03, "SHOW VARIABLES LIKE '%a%b%'")...))
	f.Add(append(mysqltest.Command(0x0e, ""), append(mysqltest.Command(0x02, "main"), mysqltest.Command(0x04, "f\x00")...)...))
	f.Add(append(mysqltest.Command(0x1f, ""), mysqltest.Command(0x1b, "\x00\x00")...))
	f.Add(mysqltest.Command(0x17, "\x01\x00\x00\x00"))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 0x03})
	f.Add([]byte{1, 0, 0, 7, 0x03})

	db, err := Open(filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })

	f.Fuzz(func(t *testing.T, data []byte) { mysqltest.FuzzSession(t, data, db.ServeMySQL) })
}

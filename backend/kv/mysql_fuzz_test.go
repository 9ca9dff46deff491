package kv

import (
	"path/filepath"
	"testing"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver/mysqltest"
)

// FuzzMySQLSession feeds arbitrary bytes to a MySQL protocol session on a namespace after the
// handshake: it must neither panic nor hang, whatever arrives.
func FuzzMySQLSession(f *testing.F) {
	f.Add(mysqltest.Command(0x03, "INSERT INTO kv (`key`, value, metadata, expiration_ttl) VALUES ('a', _binary'\x00', '{}', 60)"))
	f.Add(append(mysqltest.Command(0x03, "SELECT key, value FROM kv WHERE key LIKE 'a%' AND key > '' ORDER BY key LIMIT 5"), mysqltest.Command(0x03, "DELETE FROM kv WHERE key = X'61'")...))
	f.Add(append(mysqltest.Command(0x16, "SELECT value FROM kv WHERE key = ?"),
		mysqltest.Packet(0, 0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xfe, 0, 1, 'a')...))
	f.Add(append(mysqltest.Command(0x03, "BEGIN"), mysqltest.Command(0x03, "UPDATE kv SET value = 'x'")...))
	f.Add(append(mysqltest.Command(0x03, "SET NAMES utf8mb4"), mysqltest.Command(0x04, "kv\x00")...))

	ns, err := Open(filepath.Join(f.TempDir(), "fuzz.kv"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ns.Close() })

	f.Fuzz(func(t *testing.T, data []byte) { mysqltest.FuzzSession(t, data, ns.ServeMySQL) })
}

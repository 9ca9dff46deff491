package kv

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mysqlPacket frames a payload as one MySQL packet with sequence number seq.
func mysqlPacket(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// mysqlCommand frames a command packet (sequence 0).
func mysqlCommand(cmd byte, body string) []byte {
	return mysqlPacket(0, append([]byte{cmd}, body...)...)
}

// mysqlHandshake completes the connection phase as a client: it reads the server's greeting,
// answers as user "fuzz" with no password, and reads the OK.
func mysqlHandshake(c net.Conn) error {
	read := func() ([]byte, error) {
		var h [4]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return nil, err
		}
		b := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
		_, err := io.ReadFull(c, b)
		return b, err
	}
	if _, err := read(); err != nil {
		return err
	}
	const caps = 0x1 | 0x200 | 0x2000 | 0x8000 | 0x80000 // LONG_PASSWORD, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH
	resp := binary.LittleEndian.AppendUint32(nil, caps)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 45)
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, "fuzz\x00"...)
	resp = append(resp, 0) // no auth response
	resp = append(resp, "mysql_native_password\x00"...)
	if _, err := c.Write(mysqlPacket(1, resp...)); err != nil {
		return err
	}
	_, err := read()
	return err
}

// FuzzMySQLSession feeds arbitrary bytes to a MySQL protocol session on a namespace after the
// handshake: it must neither panic nor hang, whatever arrives.
func FuzzMySQLSession(f *testing.F) {
	f.Add(mysqlCommand(0x03, "INSERT INTO kv (`key`, value, metadata, expiration_ttl) VALUES ('a', _binary'\x00', '{}', 60)"))
	f.Add(append(mysqlCommand(0x03, "SELECT key, value FROM kv WHERE key LIKE 'a%' AND key > '' ORDER BY key LIMIT 5"), mysqlCommand(0x03, "DELETE FROM kv WHERE key = X'61'")...))
	f.Add(append(mysqlCommand(0x16, "SELECT value FROM kv WHERE key = ?"),
		mysqlPacket(0, 0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0xfe, 0, 1, 'a')...))
	f.Add(append(mysqlCommand(0x03, "BEGIN"), mysqlCommand(0x03, "UPDATE kv SET value = 'x'")...))
	f.Add(append(mysqlCommand(0x03, "SET NAMES utf8mb4"), mysqlCommand(0x04, "kv\x00")...))

	ns, err := Open(filepath.Join(f.TempDir(), "fuzz.kv"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ns.Close() })

	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- ns.ServeMySQL(ctx, server) }()
		if err := mysqlHandshake(client); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		go io.Copy(io.Discard, client)
		go func() {
			client.Write(data)
			client.Close() // EOF ends the session once it has read everything
		}()
		select {
		case err := <-done:
			if err != nil && strings.Contains(err.Error(), "panic") {
				t.Fatalf("%v on %q", err, data)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("session hangs on %q", data)
		}
	})
}

// Package mysqltest holds what the tests of MySQL protocol servers built on mysqlserver (D1's,
// KV's) share: packet framing, a minimal client handshake, one fuzz round of a session, and
// go-sql-driver/mysql handles on in-memory sessions.
// Only _test.go files import it.
package mysqltest

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Packet frames a payload as one MySQL packet with sequence number seq.
func Packet(seq byte, payload ...byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
}

// Command frames a command packet (sequence 0).
func Command(cmd byte, body string) []byte {
	return Packet(0, append([]byte{cmd}, body...)...)
}

// Handshake completes the connection phase as a client: it reads the server's greeting,
// answers as user "fuzz" with no password, and reads the OK.
func Handshake(c net.Conn) error {
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
	if _, err := c.Write(Packet(1, resp...)); err != nil {
		return err
	}
	_, err := read()
	return err
}

// FuzzSession runs one session with serve, completes the handshake, sends data and ends the
// connection: the session must neither panic nor hang, whatever arrives.
func FuzzSession(t *testing.T, data []byte, serve func(context.Context, net.Conn) error) {
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, server) }()
	if err := Handshake(client); err != nil {
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
}

// dialers routes go-sql-driver's "mysqltest" network to the dial function registered under the
// address: RegisterDialContext is process-wide, the servers are per test.
var (
	dialers      sync.Map // addr -> func(ctx, network, addr string) (net.Conn, error)
	registerOnce sync.Once
)

// Open returns a database/sql handle through go-sql-driver/mysql on the sessions dial makes
// (an in-memory DialMySQL), on database db, closed when the test ends. interpolate picks the
// text protocol only (true) or server-side prepared statements (false).
func Open(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error), db string, interpolate bool) *sql.DB {
	t.Helper()
	registerOnce.Do(func() {
		mysql.RegisterDialContext("mysqltest", func(ctx context.Context, addr string) (net.Conn, error) {
			v, ok := dialers.Load(addr)
			if !ok {
				return nil, errors.New("mysqltest: no server registered as " + addr)
			}
			return v.(func(context.Context, string, string) (net.Conn, error))(ctx, "mysqltest", addr)
		})
	})
	dialers.Store(t.Name(), dial)
	t.Cleanup(func() { dialers.Delete(t.Name()) })
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "app", "mysqltest", t.Name(), db
	cfg.InterpolateParams = interpolate
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sdb := sql.OpenDB(c)
	t.Cleanup(func() { sdb.Close() })
	return sdb
}

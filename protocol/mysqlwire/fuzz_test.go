package mysqlwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// fuzzMax is small so that the fuzzer reaches the too-large path cheaply.
const fuzzMax = 64

// chunkReader hands out at most n bytes per Read, to split packets at every position.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	m := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[m:]
	return m, nil
}

func FuzzReadPacket(f *testing.F) {
	query := AppendPacket(nil, 0, append([]byte{mysql.COM_QUERY}, "select 1"...))
	f.Add(query, uint8(3))
	f.Add(append(AppendPacket(nil, 0, []byte{mysql.COM_PING}), AppendPacket(nil, 0, []byte{mysql.COM_QUIT})...), uint8(1))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 1, 2, 3}, uint8(7))    // a split packet cut short
	f.Add([]byte{0xff, 0xff, 0xff, 0, 0, 0, 0, 5}, uint8(2)) // an empty one
	f.Add(append(query, 0x40, 0, 0, 0), uint8(4))            // oversized after a good one
	f.Add(AppendPacket(nil, 0, []byte{mysql.COM_STMT_CLOSE, 1, 0, 0, 0}), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		r := NewReader(&chunkReader{data: data, n: int(chunk%16) + 1}, fuzzMax)
		consumed := 0
		for {
			raw, err := r.ReadPacket()
			if err != nil {
				for _, want := range []error{io.EOF, io.ErrUnexpectedEOF, ErrTooLarge, ErrOutOfOrder} {
					if errors.Is(err, want) {
						return
					}
				}
				t.Fatalf("unexpected error %v", err)
			}
			if !bytes.Equal(raw, data[consumed:consumed+len(raw)]) {
				t.Fatalf("packet %x is not the input at %d", raw, consumed)
			}
			consumed += len(raw)
			if p := Payload(raw); len(p) > fuzzMax || len(p) != len(raw)-HeaderLen {
				t.Fatalf("payload of %d bytes from a packet of %d", len(p), len(raw))
			}
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(response("app", []byte("01234567890123456789"), "app", NativePassword))
	f.Add(response("app", nil, "", ""))
	f.Add(response("", nil, "", "")[:32])
	attrs := response("app", nil, "app", CachingSHA2Password)
	binary.LittleEndian.PutUint32(attrs, binary.LittleEndian.Uint32(attrs)|mysql.CLIENT_CONNECT_ATTRS)
	f.Add(append(attrs, 0x0c, 3, 'k', 'e', 'y', 7, 'v', 'a', 'l', 'u', 'e', '!', '!'))
	f.Add(append(attrs, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseResponse(p)
		if err != nil {
			return
		}
		if len(r.AuthData) > len(p) || len(r.User) > len(p) || len(r.Attrs) > maxAttrs {
			t.Fatalf("parsed more than was there: %+v", r)
		}
	})
}

func FuzzParseChangeUser(f *testing.F) {
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS)
	f.Add([]byte("app\x00\x14abcdefghijklmnopqrst"+"app\x00"+"\x2d\x00"+"mysql_native_password\x00"), caps)
	f.Add([]byte("app\x00\x00\x00"), uint32(0))
	f.Add([]byte("app\x00\x00db\x00\x2d\x00caching_sha2_password\x00\x05\x01k\x02vv"), caps)
	f.Fuzz(func(t *testing.T, p []byte, caps uint32) {
		r, err := ParseChangeUser(p, caps)
		if err != nil {
			return
		}
		if len(r.AuthData) > len(p) || len(r.Attrs) > maxAttrs {
			t.Fatalf("parsed more than was there: %+v", r)
		}
	})
}

// scriptConn is a client connection whose client side is a script of bytes.
type scriptConn struct {
	net.Conn // nil: only the methods below are called
	r        io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) Close() error                     { return nil }

func FuzzAccept(f *testing.F) {
	f.Add(AppendPacket(nil, 1, response("app", make([]byte, 20), "app", NativePassword)))
	f.Add(AppendPacket(nil, 1, response("app", make([]byte, 32), "app", CachingSHA2Password)))
	f.Add(append(AppendPacket(nil, 1, response("app", nil, "app", "client_ed25519")), AppendPacket(nil, 3, make([]byte, 20))...))
	f.Add(append(AppendPacket(nil, 1, response("app", []byte{1}, "app", CachingSHA2Password)), AppendPacket(nil, 3, []byte{2})...))
	f.Fuzz(func(t *testing.T, script []byte) {
		cfg := config(NativePassword, CachingSHA2Password, nil)
		c, err := Accept(context.Background(), &scriptConn{r: &chunkReader{data: script, n: 7}}, cfg)
		if err == nil && c.Response.User != "app" {
			t.Fatalf("let %q in", c.Response.User)
		}
	})
}

func FuzzParseStmtRegistration(f *testing.F) {
	f.Add(AppendStmtRegistration(nil, 7, 2, []byte{8, 0, 253, 0}, "app", "SELECT ? + ?")[HeaderLen+1:])
	f.Add([]byte{1, 0, 0, 0, 1, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, params, types, db, sql, ok := ParseStmtRegistration(b)
		if !ok {
			return
		}
		again := AppendStmtRegistration(nil, id, params, types, db, sql)
		if id2, p2, t2, db2, sql2, ok := ParseStmtRegistration(again[HeaderLen+1:]); !ok || id2 != id || p2 != params ||
			string(t2) != string(types) || db2 != db || sql2 != sql {
			t.Fatalf("%x does not read back as it was written", b)
		}
	})
}

package mysqlpool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
)

// resp builds a response from payloads, numbering packets from 1.
func resp(payloads ...[]byte) []byte {
	var b []byte
	for i, p := range payloads {
		b = append(b, packet(byte(i+1), p)...)
	}
	return b
}

func eof(status uint16) []byte { return []byte{hdrEOF, 0, 0, byte(status), byte(status >> 8)} }
func ok(hdr byte, status uint16) []byte {
	return []byte{hdr, 0, 0, byte(status), byte(status >> 8), 0, 0}
}

// feedAll runs a parser over a response and returns it, and the packets it took.
func feedAll(kind respKind, deprecateEOF bool, b []byte) (*parser, int, error) {
	var p parser
	p.reset(kind, deprecateEOF)
	n := 0
	for len(b) >= 4 && !p.done() {
		l := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if len(b) < 4+l {
			return &p, n, errMalformed
		}
		if err := p.feed(b[4 : 4+l]); err != nil {
			return &p, n, err
		}
		n++
		b = b[4+l:]
	}
	return &p, n, nil
}

func TestParserFindsTheEndOfEachResponse(t *testing.T) {
	col := []byte("\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00")
	for _, tc := range []struct {
		name    string
		kind    respKind
		depr    bool
		b       []byte
		packets int
		results int
		failed  bool
		cursor  bool
	}{
		{"an OK", rQuery, false, resp(ok(0, statusAutocommit)), 1, 1, false, false},
		{"an ERR", rQuery, false, resp([]byte("\xff\x7a\x04#42S02no such table")), 1, 0, true, false},
		{"a result set with EOFs", rQuery, false, resp([]byte{1}, col, eof(2), []byte("\x011"), eof(2)), 5, 1, false, false},
		{"a result set without EOFs", rQuery, true, resp([]byte{1}, col, []byte("\x011"), ok(hdrEOF, 2)), 4, 1, false, false},
		{"two results", rQuery, true, resp(ok(0, statusMoreResults), []byte{1}, col, ok(hdrEOF, 2)), 4, 2, false, false},
		{"an error after rows", rQuery, true, resp([]byte{1}, col, []byte("\x011"), []byte("\xff\x01\x00#HY000x")), 4, 0, true, false},
		{"a prepare with EOFs", rPrepare, false, resp([]byte{0, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, col, eof(2), col, eof(2)), 5, 0, false, false},
		{"a prepare without EOFs", rPrepare, true, resp([]byte{0, 7, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0}, col, col, col), 4, 0, false, false},
		{"an execute opening a cursor", rExecute, false, resp([]byte{1}, col, eof(statusCursor|2)), 3, 1, false, true},
		{"an execute opening a cursor without EOFs", rExecute, true, resp([]byte{1}, col, ok(hdrEOF, statusCursor|2)), 3, 1, false, true},
		{"binary rows", rExecute, true, resp([]byte{1}, col, []byte{0, 0, 1, 'a'}, ok(hdrEOF, 2)), 4, 1, false, false},
		{"a fetch", rFetch, false, resp([]byte{0, 0, 1, 'a'}, eof(statusLastRowSent)), 2, 1, false, false},
		{"a field list", rFieldList, false, resp(col, col, eof(2)), 3, 1, false, false},
		{"a statistics string", rOne, false, resp([]byte("Uptime: 5")), 1, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, n, err := feedAll(tc.kind, tc.depr, tc.b)
			if err != nil || !p.done() || n != tc.packets || p.results != tc.results || p.failed != tc.failed || p.cursor != tc.cursor {
				t.Errorf("err %v, done %v after %d packets, results %d, failed %v, cursor %v; want done after %d, %d, %v, %v",
					err, p.done(), n, p.results, p.failed, p.cursor, tc.packets, tc.results, tc.failed, tc.cursor)
			}
		})
	}
}

// FuzzParser feeds arbitrary packets to the response parser: it must never panic, and it
// either ends, asks for more, or says the response is malformed.
func FuzzParser(f *testing.F) {
	col := []byte("\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00")
	f.Add(byte(rQuery), false, resp([]byte{1}, col, eof(2), []byte("\x011"), eof(2)))
	f.Add(byte(rQuery), true, resp(ok(0, statusMoreResults), []byte{1}, col, ok(hdrEOF, 2)))
	f.Add(byte(rPrepare), false, resp([]byte{0, 7, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0}, col, eof(2), col, eof(2)))
	f.Add(byte(rExecute), true, resp([]byte{1}, col, ok(hdrEOF, statusCursor|2)))
	f.Add(byte(rFetch), false, resp([]byte{0, 0, 1, 'a'}, eof(statusLastRowSent)))
	f.Fuzz(func(t *testing.T, kind byte, depr bool, b []byte) {
		feedAll(respKind(kind%6), depr, b)
	})
}

// fakeOrigin puts a connection whose far end is script into p, as if dialled, in a free slot:
// the next lease gets it.
func fakeOrigin(t testing.TB, p *Pool, key connKey, deprecateEOF bool, script func(net.Conn)) net.Conn {
	near, far := net.Pipe()
	go func() {
		defer far.Close()
		script(far)
	}()
	c := &originConn{nc: near, r: bufio.NewReader(near), key: key, created: time.Now(), idleSince: time.Now(),
		status: statusAutocommit, db: p.dc.db, prepared: make(map[string]*originStmt), deprecateEOF: deprecateEOF}
	// Take a slot as if to dial, and release the connection into it.
	if _, dial, err := p.slots.Take(context.Background(), key); !dial {
		t.Fatalf("fakeOrigin: the pool has no free slot (%v)", err)
	}
	p.release(c)
	return near
}

// FuzzMalformedOriginEndsOnlyTheSession gives a session an origin that answers a query with
// arbitrary bytes: the session may get them or end with ErrOriginLost, and never panics or
// hangs.
func FuzzMalformedOriginEndsOnlyTheSession(f *testing.F) {
	f.Add(false, resp([]byte{1}, []byte("x"), eof(2), []byte("\x011"), eof(2)))
	f.Add(true, resp([]byte{1}, []byte("x"), []byte("\x011"), ok(hdrEOF, 2)))
	f.Add(true, resp(ok(0, statusMoreResults), []byte{1}, []byte("x"), ok(hdrEOF, 2)))
	f.Add(false, resp([]byte{0xfe, 0xff}))
	f.Add(false, resp([]byte{0, 7, 0, 0, 0, 1}))
	f.Add(false, []byte{0xff, 0xff, 0xff, 1, 0})
	// translate: the origin connection took CLIENT_DEPRECATE_EOF, the client did not.
	f.Fuzz(func(t *testing.T, translate bool, answer []byte) {
		// A pool of its own: fakeOrigin's connection takes its one slot.
		p, err := New(Config{Name: "fuzz", Origin: "mysql://u:p@127.0.0.1:1/db", MaxConns: 1, QueueTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		s := p.NewSession(context.Background(), map[string]string{"database": "db",
			"capabilities": "0", "collation": "0"})
		defer s.Close()
		near := fakeOrigin(t, p, s.key, translate, func(c net.Conn) {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			var h [4]byte
			if _, err := c.Read(h[:]); err != nil {
				return
			}
			buf := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
			c.Read(buf)
			c.Write(answer)
		})
		defer near.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); err != nil {
			return
		}
		var buf []byte
		for s.Pending() {
			if buf, err = s.Recv(ctx, buf); err != nil {
				if !errors.Is(err, link.ErrOriginLost) {
					t.Fatalf("Recv: %v, want ErrOriginLost", err)
				}
				return
			}
		}
		if !translate && !bytes.HasPrefix(answer, buf[:min(len(buf), len(answer))]) {
			t.Fatalf("the client got bytes the origin never sent")
		}
	})
}

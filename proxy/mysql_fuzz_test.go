package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// okStream answers every command with one OK packet, and a query mentioning INFILE with a
// LOAD DATA LOCAL request, as an origin would.
type okStream struct {
	pending, infile bool
	seq             byte
	closed          atomic.Bool // Close may come from another goroutine
}

func (s *okStream) Send(ctx context.Context, frames []byte) error {
	if s.closed.Load() {
		return link.ErrOriginLost
	}
	s.seq = mysqlwire.LastSeq(frames) + 1
	if s.infile {
		s.pending = len(frames) == mysqlwire.HeaderLen
		s.infile = !s.pending
		return nil
	}
	switch frames[mysqlwire.HeaderLen] {
	case mysql.COM_QUIT:
		return link.ErrTerminated
	case mysql.COM_STMT_CLOSE, mysql.COM_STMT_SEND_LONG_DATA:
		return nil
	}
	s.pending = true
	s.infile = bytes.Contains(frames, []byte("INFILE"))
	return nil
}

func (s *okStream) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	s.pending = false
	if s.infile {
		return mysqlwire.AppendPacket(dst, s.seq, []byte("\xfbfile")), nil
	}
	return mysqlwire.AppendOK(dst, s.seq, mysql.SERVER_STATUS_AUTOCOMMIT), nil
}

func (s *okStream) Pending() bool                    { return s.pending }
func (s *okStream) Pinned() bool                     { return false }
func (s *okStream) Caps() link.Caps                  { return link.Caps{} }
func (s *okStream) Skip([]byte)                      {}
func (s *okStream) Cancel(ctx context.Context) error { return nil }
func (s *okStream) Close() error                     { s.closed.Store(true); return nil }

// scriptConn is a client whose bytes are a script; what the edge writes is kept.
type scriptConn struct {
	net.Conn // nil: only the methods below are called
	r        io.Reader
	out      bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) Close() error                     { return nil }

// FuzzMySQLSession runs the command loop of one authenticated session over a script of
// client bytes: whatever they are, the session ends when they do (or earlier), never panics,
// and writes only whole packets.
func FuzzMySQLSession(f *testing.F) {
	cmd := func(seq byte, p string) []byte { return mysqlwire.AppendPacket(nil, seq, []byte(p)) }
	f.Add(append(cmd(0, "\x03SELECT 1"), cmd(0, "\x01")...))
	f.Add(append(append(cmd(0, "\x0e"), cmd(0, "\x03KILL QUERY 1")...), cmd(0, "\x03kill 99;")...))
	f.Add(append(append(cmd(0, "\x03LOAD DATA LOCAL INFILE 'x' INTO TABLE t"), cmd(2, "1\t2\n")...), cmd(3, "")...))
	f.Add(append(cmd(0, "\x19\x01\x00\x00\x00"), cmd(0, "\x18\x01\x00\x00\x00\x00\x00abc")...))
	f.Add(cmd(0, "\x11app\x00\x00app\x00\x2d\x00mysql_native_password\x00"))
	f.Add(append(cmd(0, "\x08"), cmd(5, "\x03SELECT 1")...))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 3, 1, 2})
	f.Add(cmd(0, ""))
	f.Fuzz(func(t *testing.T, script []byte) {
		db := Database{Name: "app", User: "app", Password: "pw", Protocol: ProtocolMySQL}
		s := New(Config{Databases: []Database{db}, MaxMessage: 1 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		nc := &scriptConn{r: bytes.NewReader(script)}
		caps := mysqlwire.Capabilities(mysqlwire.ForwardedCapabilities, true)
		r := mysqlwire.NewReader(nc, 1<<10)
		sess := &mysqlSession{s: s, log: s.log, db: db, user: "app", nc: nc, r: r, stream: &okStream{}, caps: caps,
			conn: &mysqlwire.Conn{Net: nc, Reader: r, Capabilities: caps}}
		sess.id = s.myConns.add(sess)
		sess.ready.Store(true)
		s.cfg.Transport = failingTransport{}
		sess.run(context.Background())

		out := mysqlwire.NewReader(bytes.NewReader(nc.out.Bytes()), 1<<20)
		for {
			if _, err := out.ReadPacket(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("the edge wrote a broken packet: %v", err)
				}
				break
			}
		}
	})
}

// failingTransport refuses everything: a COM_CHANGE_USER that gets through to Open fails.
type failingTransport struct{}

func (failingTransport) Profile(context.Context, string) (link.Profile, error) {
	return link.Profile{}, errors.New("no origin")
}

func (failingTransport) Open(context.Context, string, map[string]string) (link.Stream, error) {
	return nil, errors.New("no origin")
}

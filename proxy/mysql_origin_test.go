package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// rawOrigin is a stand-in for the MySQL pool side (pool/mysql) in the edge's tests: each
// stream is its own MariaDB connection, logged in with the flags the edge negotiated, and
// packets pass through unchanged. It knows just enough of the protocol to tell where an
// answer ends.
type rawOrigin struct {
	addr, user, password string
	// queueTimeout: Open's streams fail their first Send with ErrQueueTimeout this many times.
	queueTimeouts int

	mu       sync.Mutex
	profile  map[string]string
	profiles int // how often the origin was asked for its profile
}

func (o *rawOrigin) Profile(ctx context.Context) (link.Profile, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.profile == nil {
		o.profiles++
		nc, r, hs, err := o.greeting(ctx)
		if err != nil {
			return link.Profile{}, err
		}
		_ = r
		nc.Close()
		o.profile = map[string]string{"protocol": "mysql", "server_version": hs.ServerVersion,
			"capabilities": strconv.FormatUint(uint64(hs.Capabilities), 10),
			"collation":    strconv.Itoa(int(hs.Collation)), "status": strconv.Itoa(int(hs.Status))}
	}
	return link.Profile{Parameters: o.profile}, nil
}

func (o *rawOrigin) Open(ctx context.Context, params map[string]string) (link.Stream, error) {
	caps, err := strconv.ParseUint(params["capabilities"], 10, 32)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	timeouts := o.queueTimeouts
	o.mu.Unlock()
	// Like the pool: the session starts in the origin's own database.
	return &rawStream{o: o, caps: uint32(caps), db: mytest.AppDB, queueTimeouts: timeouts}, nil
}

// greeting dials the origin and reads its handshake.
func (o *rawOrigin) greeting(ctx context.Context) (net.Conn, *mysqlwire.Reader, mysqlwire.Handshake, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, nil, mysqlwire.Handshake{}, err
	}
	r := mysqlwire.NewReader(nc, 1<<20)
	raw, err := r.ReadPacket()
	if err != nil {
		nc.Close()
		return nil, nil, mysqlwire.Handshake{}, err
	}
	hs, err := parseHandshake(mysqlwire.Payload(raw))
	if err != nil {
		nc.Close()
	}
	return nc, r, hs, err
}

func parseHandshake(p []byte) (mysqlwire.Handshake, error) {
	var hs mysqlwire.Handshake
	end := 1
	for end < len(p) && p[end] != 0 {
		end++
	}
	if len(p) < end+45 {
		return hs, errors.New("short handshake")
	}
	hs.ServerVersion = string(p[1:end])
	p = p[end+1:]
	hs.ConnID = binary.LittleEndian.Uint32(p)
	copy(hs.Salt[:8], p[4:12])
	hs.Capabilities = uint32(binary.LittleEndian.Uint16(p[13:]))
	hs.Collation = p[15]
	hs.Status = binary.LittleEndian.Uint16(p[16:])
	hs.Capabilities |= uint32(binary.LittleEndian.Uint16(p[18:])) << 16
	copy(hs.Salt[8:], p[31:43])
	return hs, nil
}

// login opens an origin connection with the given client flags.
func (o *rawOrigin) login(ctx context.Context, caps uint32, db string) (net.Conn, *mysqlwire.Reader, uint32, error) {
	nc, r, hs, err := o.greeting(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	caps |= mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD
	caps &^= mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_SSL | mysql.CLIENT_CONNECT_WITH_DB
	if db != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	caps &= hs.Capabilities
	auth := mysql.CalcNativePassword(hs.Salt[:], []byte(o.password))
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45)
	p = append(p, make([]byte, 23)...)
	p = append(append(p, o.user...), 0)
	p = append(append(p, byte(len(auth))), auth...)
	if db != "" {
		p = append(append(p, db...), 0)
	}
	p = append(append(p, mysqlwire.NativePassword...), 0)
	if _, err := nc.Write(mysqlwire.AppendPacket(nil, 1, p)); err != nil {
		nc.Close()
		return nil, nil, 0, err
	}
	raw, err := r.ReadPacket()
	if err != nil {
		nc.Close()
		return nil, nil, 0, err
	}
	if p := mysqlwire.Payload(raw); p[0] != 0 {
		nc.Close()
		return nil, nil, 0, fmt.Errorf("origin login: %q", p)
	}
	return nc, r, hs.ConnID, nil
}

// rawStream is one session of rawOrigin. Send and Recv are called by the session's
// goroutine; Cancel and Close by any.
type rawStream struct {
	o             *rawOrigin
	caps          uint32
	db            string
	queueTimeouts int

	nc      net.Conn
	r       *mysqlwire.Reader
	id      uint32
	cmd     byte
	pending bool
	infile  bool

	mu     sync.Mutex
	closed bool
}

func (s *rawStream) Send(ctx context.Context, frames []byte) error {
	if s.queueTimeouts > 0 {
		s.queueTimeouts--
		return link.ErrQueueTimeout
	}
	cmd := frames[mysqlwire.HeaderLen]
	if !s.infile && cmd == mysql.COM_QUIT {
		s.Close()
		return link.ErrTerminated
	}
	if s.nc == nil {
		nc, r, id, err := s.o.login(ctx, s.caps, s.db)
		if err != nil {
			return fmt.Errorf("%w: %v", link.ErrOriginLost, err)
		}
		s.mu.Lock()
		s.nc, s.r, s.id = nc, r, id
		s.mu.Unlock()
	}
	if _, err := s.nc.Write(frames); err != nil {
		return fmt.Errorf("%w: %v", link.ErrOriginLost, err)
	}
	if s.infile {
		s.pending = len(frames) == mysqlwire.HeaderLen
		s.infile = !s.pending
		return nil
	}
	s.cmd = cmd
	s.pending = cmd != mysql.COM_STMT_CLOSE && cmd != mysql.COM_STMT_SEND_LONG_DATA
	return nil
}

func (s *rawStream) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	dst, err := s.readAnswer(dst)
	s.pending = false
	if err != nil {
		return dst, fmt.Errorf("%w: %v", link.ErrOriginLost, err)
	}
	return dst, nil
}

// readAnswer appends one whole answer to the current command.
func (s *rawStream) readAnswer(dst []byte) ([]byte, error) {
	read := func() ([]byte, error) {
		raw, err := s.r.ReadPacket()
		dst = append(dst, raw...)
		return mysqlwire.Payload(raw), err
	}
	deprecateEOF := s.caps&mysql.CLIENT_DEPRECATE_EOF != 0
	defs := func(n int) error {
		for range n {
			if _, err := read(); err != nil {
				return err
			}
		}
		if n > 0 && !deprecateEOF {
			_, err := read()
			return err
		}
		return nil
	}
	switch s.cmd {
	case mysql.COM_STMT_PREPARE:
		p, err := read()
		if err != nil || p[0] != 0 {
			return dst, err
		}
		// p is the reader's until the next read.
		cols, params := int(binary.LittleEndian.Uint16(p[5:])), int(binary.LittleEndian.Uint16(p[7:]))
		if err := defs(params); err != nil {
			return dst, err
		}
		return dst, defs(cols)
	case mysql.COM_STATISTICS:
		_, err := read()
		return dst, err
	case mysql.COM_FIELD_LIST:
		for {
			p, err := read()
			if err != nil || p[0] == 0xff || p[0] == 0xfe && len(p) < 9 {
				return dst, err
			}
		}
	}
	for {
		p, err := read()
		if err != nil {
			return dst, err
		}
		switch p[0] {
		case 0x00:
			if okStatus(p)&mysql.SERVER_MORE_RESULTS_EXISTS != 0 {
				continue
			}
			return dst, nil
		case 0xff:
			return dst, nil
		case 0xfb:
			s.infile = true
			return dst, nil
		}
		n, _, _ := mysql.LengthEncodedInt(p)
		if err := defs(int(n)); err != nil {
			return dst, err
		}
		var status uint16
		for {
			p, err := read()
			if err != nil {
				return dst, err
			}
			if p[0] == 0xff {
				return dst, nil
			}
			if p[0] == 0xfe && (len(p) < 9 || deprecateEOF && len(p) < mysqlwire.MaxPayload) {
				if len(p) < 9 && !deprecateEOF {
					status = binary.LittleEndian.Uint16(p[3:])
				} else {
					status = okStatus(p)
				}
				break
			}
		}
		if status&mysql.SERVER_MORE_RESULTS_EXISTS == 0 {
			return dst, nil
		}
	}
}

func okStatus(p []byte) uint16 {
	p = p[1:]
	for range 2 {
		_, _, k := mysql.LengthEncodedInt(p)
		p = p[k:]
	}
	return binary.LittleEndian.Uint16(p)
}

func (s *rawStream) Pending() bool      { return s.pending }
func (s *rawStream) Pinned() bool       { return false }
func (s *rawStream) Caps() link.Caps    { return link.Caps{} }
func (s *rawStream) Skip(frames []byte) {}

func (s *rawStream) Cancel(ctx context.Context) error {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	if id == 0 {
		return nil
	}
	nc, r, _, err := s.o.login(ctx, 0, "")
	if err != nil {
		return err
	}
	defer nc.Close()
	q := append([]byte{mysql.COM_QUERY}, "KILL QUERY "+strconv.Itoa(int(id))...)
	if _, err := nc.Write(mysqlwire.AppendPacket(nil, 0, q)); err != nil {
		return err
	}
	_, err = r.ReadPacket()
	return err
}

func (s *rawStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.nc != nil {
		s.nc.Close()
	}
	s.closed = true
	return nil
}

// rawTransport routes every database to its rawOrigin.
type rawTransport map[string]*rawOrigin

func (t rawTransport) Profile(ctx context.Context, db string) (link.Profile, error) {
	o, ok := t[db]
	if !ok {
		return link.Profile{}, fmt.Errorf("no database %q", db)
	}
	return o.Profile(ctx)
}

func (t rawTransport) Open(ctx context.Context, db string, params map[string]string) (link.Stream, error) {
	o, ok := t[db]
	if !ok {
		return nil, fmt.Errorf("no database %q", db)
	}
	return o.Open(ctx, params)
}

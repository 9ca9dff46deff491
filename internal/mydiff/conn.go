package mydiff

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// MariaDB's extended capabilities (the high 32 bits of a 64-bit capability word), exchanged in
// the reserved bytes of the handshake by servers and clients that leave CLIENT_MYSQL (bit 0)
// off.
const (
	ExtProgress         uint64 = 1 << 32 // MARIADB_CLIENT_PROGRESS
	ExtComMulti         uint64 = 1 << 33 // MARIADB_CLIENT_COM_MULTI
	ExtBulkOperations   uint64 = 1 << 34 // MARIADB_CLIENT_STMT_BULK_OPERATIONS
	ExtExtendedMetadata uint64 = 1 << 35 // MARIADB_CLIENT_EXTENDED_METADATA
	ExtCacheMetadata    uint64 = 1 << 36 // MARIADB_CLIENT_CACHE_METADATA
)

// clientMySQL is CLIENT_LONG_PASSWORD, which MariaDB reads as CLIENT_MYSQL: a peer that sets
// it speaks no extended capabilities.
const clientMySQL = uint64(mysql.CLIENT_LONG_PASSWORD)

// Greeting is what a server said in its initial handshake packet.
type Greeting struct {
	Version    string
	ConnID     uint32
	Caps       uint64 // with MariaDB's extended capabilities above bit 31
	Collation  byte
	Status     uint16
	AuthPlugin string
	salt       []byte
}

// Options are what a client sends in its handshake response.
type Options struct {
	User, Password, DB string
	// Caps are the capabilities the client asks for; the response carries those the server
	// offers (as a real client would: it cannot use what the server lacks), plus the ones
	// every protocol-41 client needs.
	Caps      uint64
	Collation byte // 0 means utf8mb4_general_ci (45)
}

// baseCaps are sent whatever Options.Caps say.
const baseCaps = uint64(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)

// maxPayload is the largest payload of one physical packet.
const maxPayload = 1<<24 - 1

// Conn is a client connection in the command phase, speaking raw packets.
type Conn struct {
	nc       net.Conn
	r        *bufio.Reader
	Greeting Greeting
	Caps     uint64 // negotiated: what the client sent and the server offered
}

// Packet is one logical packet as read: its payload (continuations joined) and the sequence
// ids of its physical packets.
type Packet struct {
	Seqs    []byte
	Payload []byte
	Role    Role // what the harness read it as
}

// Role is what a packet is within an answer.
type Role byte

// Roles of packets; the comparison masks fields by role.
const (
	RoleOther   Role = iota
	RoleOK           // OK packet
	RoleEOF          // EOF packet, or OK with the EOF header (CLIENT_DEPRECATE_EOF)
	RoleERR          // ERR packet
	RoleCount        // column count of a result set
	RoleColumn       // column definition
	RoleRow          // text or binary row
	RolePrepare      // COM_STMT_PREPARE_OK
	RoleParam        // parameter definition
)

var roleNames = [...]string{"packet", "OK", "EOF", "ERR", "column count", "column definition", "row",
	"prepare OK", "parameter definition"}

func (r Role) String() string { return roleNames[r] }

// Dial connects to addr and logs in.
func Dial(ctx context.Context, addr string, o Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mydiff: %w", err)
	}
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	if err := c.login(o); err != nil {
		nc.Close()
		return nil, fmt.Errorf("mydiff: login to %s: %w", addr, err)
	}
	return c, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// SetDeadline bounds every read and write from now on.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

func (c *Conn) login(o Options) error {
	p, err := c.ReadPacket()
	if err != nil {
		return err
	}
	g, err := parseGreeting(p.Payload)
	if err != nil {
		return err
	}
	c.Greeting = g
	caps := (o.Caps | baseCaps) & g.Caps
	if g.Caps&clientMySQL != 0 || caps>>32 == 0 {
		// A client that speaks no extended capabilities sets CLIENT_LONG_PASSWORD, as
		// libmysqlclient and go-sql-driver/mysql do.
		caps = caps&0xffffffff | clientMySQL
	}
	c.Caps = caps
	coll := o.Collation
	if coll == 0 {
		coll = 45
	}
	plugin := g.AuthPlugin
	auth, err := scramble(plugin, g.salt, o.Password)
	if err != nil {
		return err
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(caps))
	b = binary.LittleEndian.AppendUint32(b, 1<<24)
	b = append(b, coll)
	b = append(b, make([]byte, 19)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(caps>>32))
	b = append(append(b, o.User...), 0)
	b = mysql.AppendLengthEncodedInteger(b, uint64(len(auth)))
	b = append(b, auth...)
	b = append(append(b, o.DB...), 0)
	b = append(append(b, plugin...), 0)
	if err := c.WritePacket(1, b); err != nil {
		return err
	}
	seq := byte(2)
	for range 4 {
		p, err := c.ReadPacket()
		if err != nil {
			return err
		}
		seq = p.Seqs[len(p.Seqs)-1] + 1
		pl := p.Payload
		switch {
		case len(pl) == 0:
			return errors.New("empty packet in the connection phase")
		case pl[0] == 0x00:
			return nil
		case pl[0] == 0xff:
			return fmt.Errorf("refused: %s", describeERR(pl))
		case pl[0] == 0xfe: // AuthSwitchRequest: plugin NUL salt
			i := bytes.IndexByte(pl[1:], 0)
			if i < 0 {
				return errors.New("malformed auth switch request")
			}
			plugin = string(pl[1 : 1+i])
			salt := bytes.TrimSuffix(pl[2+i:], []byte{0})
			if auth, err = scramble(plugin, salt, o.Password); err != nil {
				return err
			}
			if err := c.WritePacket(seq, auth); err != nil {
				return err
			}
		case pl[0] == 0x01 && len(pl) == 2 && pl[1] == 0x03: // caching_sha2 fast auth: OK follows
		case pl[0] == 0x01 && len(pl) == 2 && pl[1] == 0x04:
			return errors.New("caching_sha2_password full authentication is not supported by the harness")
		default:
			return fmt.Errorf("unexpected packet 0x%02x in the connection phase", pl[0])
		}
	}
	return errors.New("too many packets in the connection phase")
}

func scramble(plugin string, salt []byte, password string) ([]byte, error) {
	if len(salt) > 20 {
		salt = salt[:20]
	}
	switch plugin {
	case mysql.AUTH_NATIVE_PASSWORD:
		return mysql.CalcNativePassword(salt, []byte(password)), nil
	case mysql.AUTH_CACHING_SHA2_PASSWORD:
		return mysql.CalcCachingSha2Password(salt, []byte(password)), nil
	}
	return nil, fmt.Errorf("auth plugin %q is not supported by the harness", plugin)
}

func parseGreeting(p []byte) (Greeting, error) {
	var g Greeting
	bad := errors.New("malformed handshake")
	if len(p) < 1 || p[0] != 10 {
		return g, bad
	}
	i := bytes.IndexByte(p[1:], 0)
	if i < 0 {
		return g, bad
	}
	g.Version = string(p[1 : 1+i])
	p = p[2+i:]
	if len(p) < 4+8+1+2+1+2+2+1+10 {
		return g, bad
	}
	g.ConnID = binary.LittleEndian.Uint32(p)
	g.salt = append(g.salt, p[4:12]...)
	p = p[13:]
	g.Caps = uint64(binary.LittleEndian.Uint16(p))
	g.Collation = p[2]
	g.Status = binary.LittleEndian.Uint16(p[3:])
	g.Caps |= uint64(binary.LittleEndian.Uint16(p[5:])) << 16
	saltLen := int(p[7])
	reserved := p[8:18]
	if g.Caps&clientMySQL == 0 {
		g.Caps |= uint64(binary.LittleEndian.Uint32(reserved[6:])) << 32
	}
	p = p[18:]
	n := max(13, saltLen-8)
	if len(p) < n {
		return g, bad
	}
	g.salt = append(g.salt, bytes.TrimSuffix(p[:n], []byte{0})...)
	p = p[n:]
	if i := bytes.IndexByte(p, 0); i >= 0 {
		g.AuthPlugin = string(p[:i])
	} else {
		g.AuthPlugin = string(p)
	}
	return g, nil
}

// WritePacket writes payload as one logical packet starting at sequence id seq, split into
// physical packets of at most 16 MiB - 1 bytes as the protocol says (a payload of a multiple
// of that length ends with an empty packet).
func (c *Conn) WritePacket(seq byte, payload []byte) error {
	_, err := c.nc.Write(AppendPacket(nil, seq, payload))
	return err
}

// Write writes raw bytes (packets with their headers).
func (c *Conn) Write(raw []byte) error {
	_, err := c.nc.Write(raw)
	return err
}

// AppendPacket appends payload as one logical packet starting at sequence id seq.
func AppendPacket(dst []byte, seq byte, payload []byte) []byte {
	for {
		n := min(len(payload), maxPayload)
		dst = append(dst, byte(n), byte(n>>8), byte(n>>16), seq)
		dst = append(dst, payload[:n]...)
		payload = payload[n:]
		seq++
		if n < maxPayload {
			return dst
		}
	}
}

// ReadPacket reads one logical packet.
func (c *Conn) ReadPacket() (Packet, error) {
	var p Packet
	for {
		var h [4]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return p, err
		}
		n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
		p.Seqs = append(p.Seqs, h[3])
		at := len(p.Payload)
		p.Payload = append(p.Payload, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, p.Payload[at:]); err != nil {
			return p, err
		}
		if n < maxPayload {
			return p, nil
		}
	}
}

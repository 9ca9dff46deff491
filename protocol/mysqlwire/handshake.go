package mysqlwire

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Authentication plugins the edge speaks.
const (
	NativePassword      = mysql.AUTH_NATIVE_PASSWORD       // mysql_native_password
	CachingSHA2Password = mysql.AUTH_CACHING_SHA2_PASSWORD // caching_sha2_password
)

// MaxHandshakeLen bounds a packet of the connection phase; the largest real ones carry a few
// kilobytes of connection attributes.
const MaxHandshakeLen = 64 << 10

// SaltLen is the length of the authentication salt (auth-plugin-data) of a handshake.
const SaltLen = 20

// Handshake is the server's greeting, Protocol::HandshakeV10.
type Handshake struct {
	ServerVersion string
	ConnID        uint32
	Salt          [SaltLen]byte // no zero bytes: clients read it as a C string
	Capabilities  uint32
	// ExtCapabilities are MariaDB's extended capabilities (see ForwardedExtCapabilities); a
	// greeting with any leaves CLIENT_LONG_PASSWORD (CLIENT_MYSQL) off, as MariaDB's does.
	ExtCapabilities uint32
	Collation       byte
	Status          uint16
	AuthPlugin      string
}

// Append appends the handshake packet (sequence id 0) to dst.
func (h *Handshake) Append(dst []byte) []byte {
	dst, at := BeginPacket(dst, 0)
	dst = append(dst, 10)
	dst = append(append(dst, h.ServerVersion...), 0)
	dst = binary.LittleEndian.AppendUint32(dst, h.ConnID)
	dst = append(append(dst, h.Salt[:8]...), 0)
	caps := h.Capabilities
	if h.ExtCapabilities != 0 {
		caps &^= mysql.CLIENT_LONG_PASSWORD
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(caps))
	dst = append(dst, h.Collation)
	dst = binary.LittleEndian.AppendUint16(dst, h.Status)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(caps>>16))
	dst = append(dst, SaltLen+1)
	dst = append(dst, make([]byte, 6)...) // reserved
	dst = binary.LittleEndian.AppendUint32(dst, h.ExtCapabilities)
	dst = append(append(dst, h.Salt[8:]...), 0)
	dst = append(append(dst, h.AuthPlugin...), 0)
	return FinishPacket(dst, at)
}

// Response is a client's Protocol::HandshakeResponse41, or its SSLRequest prefix.
type Response struct {
	Capabilities uint32
	// ExtCapabilities are the MariaDB extended capabilities of a client that left
	// CLIENT_LONG_PASSWORD (CLIENT_MYSQL) off.
	ExtCapabilities uint32
	MaxPacket       uint32
	Collation       byte
	// SSLRequest: the packet stopped after the fixed part, asking for TLS.
	SSLRequest bool
	User       string
	AuthData   []byte // shares the packet's memory
	Database   string
	AuthPlugin string // mysql_native_password when the client has no CLIENT_PLUGIN_AUTH
	Attrs      map[string]string
}

// ErrBadHandshake means a handshake response that does not parse.
var ErrBadHandshake = errors.New("mysqlwire: malformed handshake response")

// maxAttrs bounds the connection attributes a client may send.
const maxAttrs = 64

// ParseResponse parses the payload of a handshake response (or SSLRequest). AuthData
// shares payload's memory.
func ParseResponse(p []byte) (Response, error) {
	var r Response
	if len(p) < 32 {
		return r, ErrBadHandshake
	}
	r.Capabilities = binary.LittleEndian.Uint32(p)
	r.MaxPacket = binary.LittleEndian.Uint32(p[4:])
	r.Collation = p[8]
	if r.Capabilities&mysql.CLIENT_PROTOCOL_41 == 0 {
		return r, ErrBadHandshake
	}
	if r.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 {
		r.ExtCapabilities = binary.LittleEndian.Uint32(p[28:])
	}
	p = p[32:]
	if len(p) == 0 {
		if r.Capabilities&mysql.CLIENT_SSL == 0 {
			return r, ErrBadHandshake
		}
		r.SSLRequest = true
		return r, nil
	}
	var ok bool
	if r.User, p, ok = cstring(p); !ok {
		return r, ErrBadHandshake
	}
	switch {
	case r.Capabilities&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
		if r.AuthData, p, ok = lenencString(p); !ok {
			return r, ErrBadHandshake
		}
	case r.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0:
		if len(p) < 1 || len(p)-1 < int(p[0]) {
			return r, ErrBadHandshake
		}
		r.AuthData, p = p[1:1+int(p[0])], p[1+int(p[0]):]
	default:
		var s string
		if s, p, ok = cstring(p); !ok {
			return r, ErrBadHandshake
		}
		r.AuthData = []byte(s)
	}
	if r.Capabilities&mysql.CLIENT_CONNECT_WITH_DB != 0 && len(p) > 0 {
		if r.Database, p, ok = cstring(p); !ok {
			return r, ErrBadHandshake
		}
	}
	r.AuthPlugin = NativePassword
	if r.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 && len(p) > 0 {
		if i := bytes.IndexByte(p, 0); i >= 0 {
			r.AuthPlugin, p = string(p[:i]), p[i+1:]
		} else {
			r.AuthPlugin, p = string(p), nil // some clients end the packet without the NUL
		}
	}
	if r.Capabilities&mysql.CLIENT_CONNECT_ATTRS != 0 && len(p) > 0 {
		attrs, err := parseAttrs(p)
		if err != nil {
			return r, err
		}
		r.Attrs = attrs
	}
	return r, nil
}

// ParseChangeUser parses the payload of COM_CHANGE_USER after its command byte, from a client
// that negotiated caps. Capabilities of the result are caps; Collation is 0 when the client
// sent none.
func ParseChangeUser(p []byte, caps uint32) (Response, error) {
	r := Response{Capabilities: caps, AuthPlugin: NativePassword}
	var ok bool
	if r.User, p, ok = cstring(p); !ok {
		return r, ErrBadHandshake
	}
	if caps&mysql.CLIENT_SECURE_CONNECTION != 0 {
		if len(p) < 1 || len(p)-1 < int(p[0]) {
			return r, ErrBadHandshake
		}
		r.AuthData, p = p[1:1+int(p[0])], p[1+int(p[0]):]
	} else {
		var s string
		if s, p, ok = cstring(p); !ok {
			return r, ErrBadHandshake
		}
		r.AuthData = []byte(s)
	}
	if r.Database, p, ok = cstring(p); !ok {
		return r, ErrBadHandshake
	}
	if len(p) >= 2 {
		r.Collation, p = p[0], p[2:]
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 && len(p) > 0 {
		if i := bytes.IndexByte(p, 0); i >= 0 {
			r.AuthPlugin, p = string(p[:i]), p[i+1:]
		} else {
			r.AuthPlugin, p = string(p), nil
		}
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 && len(p) > 0 {
		attrs, err := parseAttrs(p)
		if err != nil {
			return r, err
		}
		r.Attrs = attrs
	}
	return r, nil
}

// parseAttrs parses length-encoded connection attributes.
func parseAttrs(p []byte) (map[string]string, error) {
	attrs, _, ok := lenencString(p)
	if !ok {
		return nil, ErrBadHandshake
	}
	m := make(map[string]string)
	for len(attrs) > 0 {
		var key, val []byte
		if key, attrs, ok = lenencString(attrs); !ok {
			return nil, ErrBadHandshake
		}
		if val, attrs, ok = lenencString(attrs); !ok {
			return nil, ErrBadHandshake
		}
		if len(m) == maxAttrs {
			return nil, ErrBadHandshake
		}
		m[string(key)] = string(val)
	}
	return m, nil
}

// cstring splits a NUL-terminated string off p.
func cstring(p []byte) (string, []byte, bool) {
	i := bytes.IndexByte(p, 0)
	if i < 0 {
		return "", p, false
	}
	return string(p[:i]), p[i+1:], true
}

// lenencString splits a length-encoded string off p. (go-mysql's LengthEncodedInt reads past
// the end of a short buffer, so this checks first.)
func lenencString(p []byte) ([]byte, []byte, bool) {
	if len(p) == 0 {
		return nil, p, false
	}
	k := 1
	switch p[0] {
	case 0xfb, 0xff:
		return nil, p, false
	case 0xfc:
		k = 3
	case 0xfd:
		k = 4
	case 0xfe:
		k = 9
	}
	if len(p) < k {
		return nil, p, false
	}
	n, _, _ := mysql.LengthEncodedInt(p[:k])
	if uint64(len(p)-k) < n {
		return nil, p, false
	}
	return p[k : k+int(n)], p[k+int(n):], true
}

package mysqlwire

import (
	"bytes"
	"encoding/binary"
	"errors"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// The client's side of the connection phase, which the pool speaks to the origin: it reads the
// server's greeting (ParseHandshake) and answers it with a handshake response
// (Response.Append). The edge's side (Handshake.Append, ParseResponse) is handshake.go.

// ErrBadGreeting means a server's greeting that does not parse, or is not protocol 10.
var ErrBadGreeting = errors.New("mysqlwire: malformed server greeting")

// ParseHandshake parses the payload of a server's Protocol::HandshakeV10. A salt shorter than
// SaltLen (a server whose plugin asked for less) is padded with zeros, as servers pad it.
func ParseHandshake(p []byte) (Handshake, error) {
	var h Handshake
	if len(p) < 1 || p[0] != 10 {
		return h, ErrBadGreeting
	}
	version, p, ok := cstring(p[1:])
	if !ok || len(p) < 4+8+1+2 {
		return h, ErrBadGreeting
	}
	h.ServerVersion = version
	h.ConnID = binary.LittleEndian.Uint32(p)
	copy(h.Salt[:8], p[4:12])
	h.Capabilities = uint32(binary.LittleEndian.Uint16(p[13:]))
	p = p[15:]
	if len(p) < 5 {
		return h, nil // a pre-4.1 server says no more
	}
	h.Collation = p[0]
	h.Status = binary.LittleEndian.Uint16(p[1:])
	h.Capabilities |= uint32(binary.LittleEndian.Uint16(p[3:])) << 16
	p = p[5:]
	if len(p) < 11 {
		return h, ErrBadGreeting
	}
	authLen := int(p[0])
	// Auth data length, 6 reserved bytes, then MariaDB's extended capabilities when the
	// server leaves CLIENT_MYSQL (CLIENT_LONG_PASSWORD) off.
	if h.Capabilities&mysql.CLIENT_LONG_PASSWORD == 0 {
		h.ExtCapabilities = binary.LittleEndian.Uint32(p[7:])
	}
	p = p[11:]
	if h.Capabilities&mysql.CLIENT_SECURE_CONNECTION != 0 {
		n := max(authLen-8, 13)
		if len(p) < n {
			return h, ErrBadGreeting
		}
		copy(h.Salt[8:], p[:n-1])
		p = p[n:]
	}
	if h.Capabilities&mysql.CLIENT_PLUGIN_AUTH != 0 && len(p) > 0 {
		if i := bytes.IndexByte(p, 0); i >= 0 {
			h.AuthPlugin = string(p[:i])
		} else {
			h.AuthPlugin = string(p)
		}
	}
	if h.AuthPlugin == "" {
		h.AuthPlugin = NativePassword
	}
	return h, nil
}

// Append appends r as a client's handshake response (sequence id seq): the whole
// Protocol::HandshakeResponse41, or only its fixed 32 bytes when r.SSLRequest is set. Its
// ExtCapabilities go into the last 4 reserved bytes when its Capabilities leave
// CLIENT_LONG_PASSWORD (CLIENT_MYSQL) off, as MariaDB's clients send them. Auth data longer
// than 250 bytes sets CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA; a database sets
// CLIENT_CONNECT_WITH_DB, attributes CLIENT_CONNECT_ATTRS.
func (r *Response) Append(dst []byte, seq byte) []byte {
	caps := r.Capabilities
	if len(r.AuthData) > 250 {
		caps |= mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
	}
	if r.Database != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	if len(r.Attrs) > 0 {
		caps |= mysql.CLIENT_CONNECT_ATTRS
	}
	dst, at := BeginPacket(dst, seq)
	dst = binary.LittleEndian.AppendUint32(dst, caps)
	dst = binary.LittleEndian.AppendUint32(dst, r.MaxPacket)
	dst = append(dst, r.Collation)
	dst = append(dst, make([]byte, 19)...)
	if caps&mysql.CLIENT_LONG_PASSWORD == 0 {
		dst = binary.LittleEndian.AppendUint32(dst, r.ExtCapabilities)
	} else {
		dst = append(dst, 0, 0, 0, 0)
	}
	if r.SSLRequest {
		return FinishPacket(dst, at)
	}
	dst = append(append(dst, r.User...), 0)
	if caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
		dst = mysql.AppendLengthEncodedInteger(dst, uint64(len(r.AuthData)))
	} else {
		dst = append(dst, byte(len(r.AuthData)))
	}
	dst = append(dst, r.AuthData...)
	if caps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
		dst = append(append(dst, r.Database...), 0)
	}
	if caps&mysql.CLIENT_PLUGIN_AUTH != 0 {
		dst = append(append(dst, r.AuthPlugin...), 0)
	}
	if caps&mysql.CLIENT_CONNECT_ATTRS != 0 {
		var attrs []byte
		for k, v := range r.Attrs {
			attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(k)))
			attrs = append(attrs, k...)
			attrs = mysql.AppendLengthEncodedInteger(attrs, uint64(len(v)))
			attrs = append(attrs, v...)
		}
		dst = mysql.AppendLengthEncodedInteger(dst, uint64(len(attrs)))
		dst = append(dst, attrs...)
	}
	return FinishPacket(dst, at)
}

// AuthSwitch is a server's AuthSwitchRequest: the plugin to answer with and its salt.
type AuthSwitch struct {
	Plugin string
	Data   []byte // shares the packet's memory; a trailing NUL is cut off
}

// ParseAuthSwitch parses the payload of an AuthSwitchRequest (header 0xfe).
func ParseAuthSwitch(p []byte) (AuthSwitch, bool) {
	if len(p) < 2 || p[0] != authSwitchRequest {
		return AuthSwitch{}, false
	}
	plugin, rest, ok := cstring(p[1:])
	if !ok {
		return AuthSwitch{}, false
	}
	if n := len(rest); n > 0 && rest[n-1] == 0 {
		rest = rest[:n-1]
	}
	return AuthSwitch{Plugin: plugin, Data: rest}, true
}

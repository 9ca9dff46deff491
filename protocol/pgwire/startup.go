package pgwire

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// StartupKind says which startup-phase packet a client sent.
type StartupKind int

// Startup-phase packets, told apart by the version or request code in their first four bytes.
const (
	Unsupported   StartupKind = iota // a protocol version or request code we do not speak
	Startup                          // StartupMessage, protocol 3.x
	SSLRequest                       // the client asks for TLS; answer 'S' or 'N'
	GSSEncRequest                    // the client asks for GSSAPI encryption; answer 'N'
	CancelRequest                    // the client asks to cancel a query on another connection
)

var startupKindNames = [...]string{"unsupported", "startup", "ssl_request", "gssenc_request", "cancel_request"}

func (k StartupKind) String() string {
	if k < 0 || int(k) >= len(startupKindNames) {
		return "StartupKind(" + strconv.Itoa(int(k)) + ")"
	}
	return startupKindNames[k]
}

// Request codes and the protocol version, from PostgreSQL's pqcomm.h.
const (
	protocolMajor3     = 3
	sslRequestCode     = 1234<<16 | 5679 // 80877103
	gssEncRequestCode  = 1234<<16 | 5680 // 80877104
	cancelRequestCode  = 1234<<16 | 5678 // 80877102
	cancelRequestLen   = 12              // code, PID, secret: the 4-byte secret of protocol 3.0
	requestCodeBodyLen = 4
)

// CancelKey identifies a backend to a CancelRequest, as sent in BackendKeyData.
type CancelKey struct {
	PID    uint32
	Secret uint32
}

// ParseStartup decodes a packet body returned by Reader.ReadStartup.
//
// For a StartupMessage (protocol 3.0, or 3.x with a higher minor version, which the caller
// should answer with NegotiateProtocolVersion; see StartupVersion) it returns the parameters,
// "user" required and "database" defaulting to the user as in PostgreSQL. Parameters named
// "_pq_.*" are protocol options the caller must also list in NegotiateProtocolVersion.
// For a CancelRequest it returns the key. SSLRequest and GSSEncRequest carry nothing.
//
// Every error is an *Error the caller can send, except that a broken CancelRequest (kind
// CancelRequest and an error) gets no answer in PostgreSQL: just close the connection.
func ParseStartup(body []byte) (kind StartupKind, params map[string]string, cancel CancelKey, err error) {
	if len(body) < 4 {
		return Unsupported, nil, CancelKey{}, Fatal(ProtocolViolation, "invalid length of startup packet")
	}
	code := binary.BigEndian.Uint32(body)
	switch {
	case code == sslRequestCode:
		return requestOnly(SSLRequest, body)
	case code == gssEncRequestCode:
		return requestOnly(GSSEncRequest, body)
	case code == cancelRequestCode:
		if len(body) != cancelRequestLen {
			return CancelRequest, nil, CancelKey{}, Fatal(ProtocolViolation, "invalid length of cancel request")
		}
		cancel = CancelKey{PID: binary.BigEndian.Uint32(body[4:]), Secret: binary.BigEndian.Uint32(body[8:])}
		return CancelRequest, nil, cancel, nil
	case code>>16 == protocolMajor3:
		params, err = parseParams(body[4:])
		return Startup, params, CancelKey{}, err
	}
	return Unsupported, nil, CancelKey{}, Fatal(FeatureNotSupported,
		"unsupported frontend protocol "+strconv.Itoa(int(code>>16))+"."+strconv.Itoa(int(code&0xffff))+
			": server supports 3.0 to 3.0")
}

// StartupVersion returns the protocol version a StartupMessage body asks for. A minor version
// above 0 is accepted by ParseStartup and must be answered with NegotiateProtocolVersion.
func StartupVersion(body []byte) (major, minor uint16) {
	if len(body) < 4 {
		return 0, 0
	}
	return binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
}

func requestOnly(kind StartupKind, body []byte) (StartupKind, map[string]string, CancelKey, error) {
	if len(body) != requestCodeBodyLen {
		return kind, nil, CancelKey{}, Fatal(ProtocolViolation, "invalid length of startup packet")
	}
	return kind, nil, CancelKey{}, nil
}

// parseParams decodes name\0value\0...\0, PostgreSQL's layout: pairs of C strings and one
// final NUL, which must be the last byte. A name given twice keeps its last value.
func parseParams(b []byte) (map[string]string, error) {
	params := make(map[string]string)
	for {
		name, rest, ok := cutCString(b)
		if !ok {
			return nil, layoutError()
		}
		if name == "" {
			if len(rest) != 0 {
				return nil, layoutError()
			}
			break
		}
		value, rest, ok := cutCString(rest)
		if !ok {
			return nil, layoutError()
		}
		params[name] = value
		b = rest
	}
	if params["user"] == "" {
		return nil, Fatal(InvalidAuthorizationSpecification, "no PostgreSQL user name specified in startup packet")
	}
	if params["database"] == "" {
		params["database"] = params["user"]
	}
	return params, nil
}

func layoutError() *Error {
	return Fatal(ProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
}

// cutCString splits a NUL-terminated string off the front of b.
// CutCString splits a NUL-terminated string off b; ok is false when b holds no NUL.
func CutCString(b []byte) (string, []byte, bool) { return cutCString(b) }

func cutCString(b []byte) (s string, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", b, false
	}
	return string(b[:i]), b[i+1:], true
}

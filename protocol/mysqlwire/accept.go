package mysqlwire

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Account is what a client must prove to log in.
type Account struct {
	User, Password string
	// Plugin is the authentication plugin the edge asks for: NativePassword or
	// CachingSHA2Password. A client that answered the handshake with another plugin gets an
	// AuthSwitchRequest.
	Plugin string
	// Trust lets anyone in, with any user name and password, as PostgreSQL's trust does (the
	// embedded database on loopback).
	Trust bool
	// Verifier, when set, is checked instead of Password: SHA1(SHA1(password)), the role's
	// mysql_native_password verifier as the origin stores it (any_role). The client is
	// switched to mysql_native_password, and Conn.PasswordHash holds the SHA1(password) its
	// scramble revealed (native.go). AnyRole with a nil Verifier refuses every password.
	Verifier []byte
	// AnyRole says the account is a role of the origin, checked against Verifier.
	AnyRole bool
}

// Config is what Accept needs for one client.
type Config struct {
	// Handshake is the greeting; Accept fills in its Salt, and adds CLIENT_SSL to its
	// capabilities when TLS is set.
	Handshake Handshake
	// TLS answers an SSLRequest; nil: the client is not offered TLS.
	TLS *tls.Config
	// Lookup finds the account a client's response asks for. An *Error it returns (ERR 1049
	// for an unknown database) is sent to the client.
	Lookup func(*Response) (Account, error)
	// Refusing, when set, is called before an ERR is sent for e, in Accept and in
	// Conn.ChangeUser, with the user the client named ("" before it named one): a brute-force
	// guard slows refusals down in it.
	Refusing func(e *Error, user string)
}

// Conn is a client connection after a successful connection phase.
type Conn struct {
	Net    net.Conn // TLS once upgraded
	Reader *Reader  // reads Net; rebuilt after a TLS upgrade, empty after Accept
	// Response is the client's handshake response; its AuthData is cleared.
	Response Response
	// Capabilities are the flags negotiated: what the client asked for of what the
	// handshake advertised.
	Capabilities uint32
	// ExtCapabilities are the MariaDB extended capabilities negotiated.
	ExtCapabilities uint32
	TLS             bool
	// PasswordHash is SHA1(password) of an AnyRole account, recovered from the client's
	// scramble; the pool logs in to the origin with it. Never logged.
	PasswordHash []byte

	seq      byte // of the packet that ends the connection phase
	salt     [SaltLen]byte
	refusing func(*Error, string)
}

// Accept runs the connection phase on nc up to a successful authentication: handshake,
// optional TLS, authentication. The caller ends it with Conn.Finish (OK) or Conn.Fail (ERR).
// An *Error it returns has been sent to the client as an ERR packet; any other error means
// the connection broke or the client sent garbage, and nothing more should be written.
func Accept(ctx context.Context, nc net.Conn, cfg Config) (*Conn, error) {
	a := &acceptor{nc: nc, r: NewReader(nc, MaxHandshakeLen), hs: cfg.Handshake, tlsConfig: cfg.TLS}
	c, err := a.run(ctx, cfg.Lookup)
	var e *Error
	if errors.As(err, &e) {
		if cfg.Refusing != nil {
			cfg.Refusing(e, a.user)
		}
		a.nc.Write(AppendError(nil, a.seq, e))
	}
	if c != nil {
		c.refusing = cfg.Refusing
	}
	return c, err
}

// Finish ends the connection phase with OK and the given status flags.
func (c *Conn) Finish(status uint16) error {
	_, err := c.Net.Write(AppendOK(nil, c.seq, status))
	return err
}

// ChangeUser authenticates the client's COM_CHANGE_USER (resp, from ParseChangeUser) as acc,
// against the salt of the connection's handshake, switching the client's plugin if it must.
// read returns the client's next packet (a packet of Reader.ReadPacket, or one read ahead by
// the caller). On success it has written nothing yet: Finish writes the OK. An *Error it
// returns has been sent; the session should end then, as MySQL ends it.
func (c *Conn) ChangeUser(resp *Response, acc Account, read func() ([]byte, error)) error {
	a := &acceptor{nc: c.Net, r: c.Reader, hs: Handshake{Salt: c.salt}, tls: c.TLS, seq: 1, next: read}
	err := a.authenticate(acc, resp, c.Capabilities)
	c.seq = a.seq
	if err == nil {
		c.PasswordHash = a.hash
	}
	var e *Error
	if errors.As(err, &e) {
		if c.refusing != nil {
			c.refusing(e, resp.User)
		}
		c.Net.Write(AppendError(nil, c.seq, e))
	}
	return err
}

// Fail ends the connection phase with ERR e.
func (c *Conn) Fail(e *Error) error {
	_, err := c.Net.Write(AppendError(nil, c.seq, e))
	return err
}

type acceptor struct {
	nc        net.Conn
	r         *Reader
	hs        Handshake
	tlsConfig *tls.Config
	tls       bool
	seq       byte // the sequence id of the next packet written
	buf       []byte
	next      func() ([]byte, error) // reads the client's next packet; nil: r.ReadPacket
	hash      []byte                 // SHA1(password) of an AnyRole account, once proved
	user      string                 // the user the client's response named
}

func (a *acceptor) run(ctx context.Context, lookup func(*Response) (Account, error)) (*Conn, error) {
	if err := fillSalt(&a.hs.Salt); err != nil {
		return nil, err
	}
	if a.tlsConfig != nil {
		a.hs.Capabilities |= mysql.CLIENT_SSL
	} else {
		a.hs.Capabilities &^= mysql.CLIENT_SSL
	}
	if err := a.write(a.hs.Append(a.buf[:0])); err != nil {
		return nil, err
	}
	raw, err := a.read()
	if err != nil {
		return nil, err
	}
	resp, err := ParseResponse(Payload(raw))
	if err != nil {
		return nil, Errorf(ErHandshake)
	}
	if resp.SSLRequest {
		if a.tlsConfig == nil {
			return nil, Errorf(ErHandshake)
		}
		// The client does not wait for an answer to its SSLRequest: its TLS ClientHello may
		// already sit in the reader's buffer. Hand those bytes to TLS, and nothing read
		// after the request to anyone else (plaintext there fails the TLS handshake).
		tc := tls.Server(&prefixConn{Conn: a.nc, prefix: a.r.take()}, a.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		a.nc, a.tls = tc, true
		a.r = NewReader(tc, MaxHandshakeLen) // never reuse bytes read before TLS
		if raw, err = a.read(); err != nil {
			return nil, err
		}
		if resp, err = ParseResponse(Payload(raw)); err != nil || resp.SSLRequest {
			return nil, Errorf(ErHandshake)
		}
	}
	caps := resp.Capabilities & a.hs.Capabilities
	a.user = resp.User
	acc, err := lookup(&resp)
	if err != nil {
		return nil, err
	}
	if err := a.authenticate(acc, &resp, caps); err != nil {
		return nil, err
	}
	resp.AuthData = nil
	return &Conn{Net: a.nc, Reader: a.r, Response: resp, Capabilities: caps, ExtCapabilities: resp.ExtCapabilities & a.hs.ExtCapabilities,
		TLS: a.tls, seq: a.seq, salt: a.hs.Salt, PasswordHash: a.hash}, nil
}

// read reads the client's next packet and sets the sequence id of the answer.
func (a *acceptor) read() ([]byte, error) {
	next := a.r.ReadPacket
	if a.next != nil {
		next = a.next
	}
	raw, err := next()
	if err != nil {
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrOutOfOrder) {
			return nil, Errorf(ErHandshake)
		}
		return nil, err
	}
	a.seq = LastSeq(raw) + 1
	return raw, nil
}

// write writes one packet, built with sequence id a.seq.
func (a *acceptor) write(b []byte) error {
	a.buf = b
	a.seq++
	_, err := a.nc.Write(b)
	return err
}

// fillSalt fills s with random printable bytes: never NUL, which ends the salt for clients.
func fillSalt(s *[SaltLen]byte) error {
	if _, err := rand.Read(s[:]); err != nil {
		return fmt.Errorf("mysqlwire: salt: %w", err)
	}
	for i, b := range s {
		s[i] = '!' + b%('~'-'!'+1)
	}
	return nil
}

// prefixConn reads prefix before its connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

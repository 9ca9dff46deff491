package pgwire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// AuthMethod is how a client proves it knows the password, named as in pg_hba.conf.
type AuthMethod string

// The methods Authenticate runs.
const (
	AuthSCRAM    AuthMethod = "scram-sha-256"
	AuthMD5      AuthMethod = "md5"
	AuthPassword AuthMethod = "password" // cleartext, only over TLS
	AuthTrust    AuthMethod = "trust"    // no password: for loopback-only listeners, as PostgreSQL's local default
)

// ParseAuthMethod checks a configured method name; "" means scram-sha-256.
func ParseAuthMethod(s string) (AuthMethod, error) {
	switch m := AuthMethod(s); m {
	case "":
		return AuthSCRAM, nil
	case AuthSCRAM, AuthMD5, AuthPassword, AuthTrust:
		return m, nil
	}
	return "", fmt.Errorf("pgwire: unknown auth method %q (want scram-sha-256, md5, password or trust)", s)
}

// Authentication request codes of the 'R' message.
const (
	authOK                = 0
	authCleartextPassword = 3
	authMD5Password       = 5
	authSASL              = 10
	authSASLContinue      = 11
	authSASLFinal         = 12
)

// Authenticate runs the server side of password authentication after the StartupMessage: it
// sends the request for method, reads the client's answers from r and checks them against
// password. It writes to rw and reads only through r, which owns any buffered bytes. It does
// not send AuthenticationOk: the caller does, followed by the rest of the startup reply.
//
// A refusal is an *Error to send to the client before closing: 28P01 for a wrong password,
// 28000 for cleartext without TLS, 08P01 for a malformed message. Other errors come from the
// connection (io.EOF is normal: psql hangs up when asked for a password it has to prompt for).
// The password never appears in an error.
func Authenticate(rw io.ReadWriter, r *Reader, method AuthMethod, user, password string, tlsConn bool) error {
	switch method {
	case AuthTrust:
		return nil
	case AuthSCRAM:
		return authSCRAM(rw, r, user, password)
	case AuthMD5:
		return authMD5(rw, r, user, password)
	case AuthPassword:
		if !tlsConn {
			return Fatal(InvalidAuthorizationSpecification, "cleartext password authentication requires TLS")
		}
		return authCleartext(rw, r, user, password)
	}
	return fmt.Errorf("pgwire: unknown auth method %q", method)
}

// AppendAuthenticationOK appends the AuthenticationOk message that ends authentication.
func AppendAuthenticationOK(dst []byte) []byte {
	return appendAuth(dst, authOK, nil)
}

func appendAuth(dst []byte, code uint32, data []byte) []byte {
	dst, at := BeginFrame(dst, 'R')
	dst = binary.BigEndian.AppendUint32(dst, code)
	dst = append(dst, data...)
	return FinishFrame(dst, at)
}

func writeAuth(w io.Writer, code uint32, data []byte) error {
	if _, err := w.Write(appendAuth(make([]byte, 0, 9+len(data)), code, data)); err != nil {
		return fmt.Errorf("pgwire: send authentication request: %w", err)
	}
	return nil
}

// readAuthResponse reads the client's next message, which must be a 'p' (PasswordMessage,
// SASLInitialResponse or SASLResponse: the type byte is shared). The body is valid until the
// next read from r.
func readAuthResponse(r *Reader) ([]byte, error) {
	typ, body, err := r.ReadMessage()
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBadLength) {
		return nil, Fatal(ProtocolViolation, "invalid message length")
	}
	if err != nil {
		return nil, fmt.Errorf("pgwire: read authentication response: %w", err)
	}
	if typ != 'p' {
		return nil, Fatal(ProtocolViolation, "expected password response, got message type "+strconv.Itoa(int(typ)))
	}
	return body, nil
}

// readPassword reads a PasswordMessage: one C string filling the body.
func readPassword(r *Reader) ([]byte, error) {
	body, err := readAuthResponse(r)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 || bytes.IndexByte(body, 0) != len(body)-1 {
		return nil, Fatal(ProtocolViolation, "invalid password packet size")
	}
	return body[:len(body)-1], nil
}

func authFailed(user string) *Error {
	return Fatal(InvalidPassword, `password authentication failed for user "`+user+`"`)
}

func authCleartext(w io.Writer, r *Reader, user, password string) error {
	if err := writeAuth(w, authCleartextPassword, nil); err != nil {
		return err
	}
	got, err := readPassword(r)
	if err != nil {
		return err
	}
	// Compare digests so that the time taken says nothing about the password's length either.
	gotSum, wantSum := sha256.Sum256(got), sha256.Sum256([]byte(password))
	if len(got) == 0 || !hmac.Equal(gotSum[:], wantSum[:]) {
		return authFailed(user)
	}
	return nil
}

func authMD5(w io.Writer, r *Reader, user, password string) error {
	return authMD5Hash(w, r, user, Verifier{Kind: VerifierPlain, secret: password}.MD5Hash(user))
}

// md5Response is what a client sends for AuthenticationMD5Password:
// "md5" + hex(md5(hex(md5(password + user)) + salt)).
func md5Response(user, password string, salt [4]byte) []byte {
	return MD5SaltedHash(Verifier{Kind: VerifierPlain, secret: password}.MD5Hash(user), salt)
}

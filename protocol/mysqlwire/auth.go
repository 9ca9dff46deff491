package mysqlwire

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// AuthMoreData markers of caching_sha2_password.
const (
	authMoreData      = 0x01
	fastAuthOK        = 0x03
	performFullAuth   = 0x04
	requestPublicKey  = 0x02
	authSwitchRequest = 0xfe
)

// authenticate checks the client's proof of acc's password, switching the client to acc's
// plugin first if it answered with another.
func (a *acceptor) authenticate(acc Account, resp *Response, caps uint32) error {
	if acc.Trust {
		return nil
	}
	password := acc.Password
	if resp.User != acc.User {
		// Challenge anyway, with a password nobody knows, so that a wrong user name looks
		// exactly like a wrong password.
		var b [16]byte
		rand.Read(b[:])
		password = hex.EncodeToString(b[:])
	}
	plugin := acc.Plugin
	if plugin == "" || acc.AnyRole {
		plugin = NativePassword
	}
	data := resp.AuthData
	if resp.AuthPlugin != plugin {
		if caps&mysql.CLIENT_PLUGIN_AUTH == 0 {
			return Errorf(ErNotSupportedAuthMode)
		}
		p, h := BeginPacket(a.buf[:0], a.seq)
		p = append(append(p, authSwitchRequest), plugin...)
		p = append(append(append(p, 0), a.hs.Salt[:]...), 0)
		if err := a.write(FinishPacket(p, h)); err != nil {
			return err
		}
		raw, err := a.read()
		if err != nil {
			return err
		}
		data = Payload(raw)
	}
	denied := Errorf(ErAccessDenied, resp.User, clientHost(a.nc), usingPassword(data))
	switch plugin {
	case NativePassword:
		if acc.AnyRole {
			return a.checkVerifier(acc, resp, data, denied)
		}
		if !equal(data, mysql.CalcNativePassword(a.hs.Salt[:], []byte(password))) {
			return denied
		}
		return nil
	case CachingSHA2Password:
		if equal(data, mysql.CalcCachingSha2Password(a.hs.Salt[:], []byte(password))) {
			if len(data) == 0 {
				return nil // the empty password: no scramble, nothing more to say
			}
			return a.write(AppendPacket(a.buf[:0], a.seq, []byte{authMoreData, fastAuthOK}))
		}
		return a.fullAuth(password, denied)
	}
	return Errorf(ErNotSupportedAuthMode)
}

// checkVerifier checks a native scramble against an AnyRole account's verifier and keeps the
// SHA1(password) it reveals.
func (a *acceptor) checkVerifier(acc Account, resp *Response, data []byte, denied *Error) error {
	v := acc.Verifier
	if resp.User != acc.User || len(v) != NativeHashLen {
		v = make([]byte, NativeHashLen) // nobody's: an unknown role is refused as a wrong password
		rand.Read(v)
	}
	hash, ok := RecoverNativeHash(a.hs.Salt[:], data, v)
	if !ok {
		return denied
	}
	a.hash = hash
	return nil
}

// fullAuth runs caching_sha2_password's full exchange: the client sends its password in
// cleartext over TLS, or encrypted with the server's RSA public key, which it may ask for.
func (a *acceptor) fullAuth(password string, denied *Error) error {
	if err := a.write(AppendPacket(a.buf[:0], a.seq, []byte{authMoreData, performFullAuth})); err != nil {
		return err
	}
	raw, err := a.read()
	if err != nil {
		return err
	}
	data := Payload(raw)
	if !a.tls {
		key, err := rsaKey()
		if err != nil {
			return Errorf(ErUnknown)
		}
		if len(data) == 1 && data[0] == requestPublicKey {
			der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
			if err != nil {
				return Errorf(ErUnknown)
			}
			p := append([]byte{authMoreData}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
			if err := a.write(AppendPacket(a.buf[:0], a.seq, p)); err != nil {
				return err
			}
			if raw, err = a.read(); err != nil {
				return err
			}
			data = Payload(raw)
		}
		plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, data, nil)
		if err != nil {
			return denied
		}
		data = mysql.Xor(plain, a.hs.Salt[:])
	}
	if n := len(data); n > 0 && data[n-1] == 0 {
		data = data[:n-1]
	}
	if !equal(data, []byte(password)) {
		return denied
	}
	return nil
}

// rsaKey is the key of caching_sha2_password's RSA exchange, made on first use.
var rsaKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func equal(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1 || len(a) == 0 && len(b) == 0
}

func usingPassword(data []byte) string {
	if len(data) == 0 || len(data) == 1 && data[0] == 0 {
		return "NO"
	}
	return "YES"
}

func clientHost(nc net.Conn) string {
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return "unknown"
	}
	return host
}

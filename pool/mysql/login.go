package mysqlpool

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/charset"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// The pool's side of the connection phase, on mysqlwire's codec: read the origin's greeting,
// upgrade to TLS as the origin URL asks, answer with a handshake response, and authenticate
// as a user whose password the URL (or a credential) gives, or as a role of a database that
// lets any role in, of which the pool holds only SHA1(password), recovered from the role's
// client's scramble at the edge (mysqlwire's native.go).

// account is whom an origin connection logs in as: with a password, or, for a role, with
// SHA1(password) (mysql_native_password only).
type account struct {
	user     string
	password string
	hash     []byte
}

// clientAttrs are the connection attributes the pool's origin connections send.
var clientAttrs = map[string]string{
	"_client_name":     "slipstream",
	"_os":              runtime.GOOS,
	"_platform":        runtime.GOARCH,
	"_runtime_version": runtime.Version(),
}

// originCaps are the flags every origin connection asks for; the formatCaps a session's key
// has are added to them.
const originCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_LONG_PASSWORD |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_FLAG

// defaultCollation is the collation asked for when the key has none the pool knows:
// utf8mb4_0900_ai_ci, which a MariaDB origin takes as its utf8mb4 default.
const defaultCollation = 255

// loginState is one connection phase in progress.
type loginState struct {
	nc   net.Conn
	r    *mysqlwire.Reader
	seq  byte // of the next packet written
	tls  bool
	acc  account
	salt []byte
}

// login runs the connection phase on nc for acc, with the flags and collation of key, and
// returns the connection (TLS once upgraded) and the origin's greeting. An ERR from the origin
// comes back as *mysql.MyError, which classifyConnect reads.
func login(ctx context.Context, nc net.Conn, dc *dialConfig, acc account, key connKey) (net.Conn, mysqlwire.Handshake, error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	ls := &loginState{nc: nc, r: mysqlwire.NewReader(nc, mysqlwire.MaxHandshakeLen), acc: acc}
	raw, err := ls.read()
	if err != nil {
		return nil, mysqlwire.Handshake{}, err
	}
	h, err := mysqlwire.ParseHandshake(raw)
	if err != nil {
		return nil, h, errors.New("mysqlpool: origin handshake not understood")
	}
	ls.salt = h.Salt[:]
	resp := ls.response(h, dc, key)
	if dc.tls != tlsOff && h.Capabilities&mysql.CLIENT_SSL != 0 {
		if err := ls.startTLS(ctx, dc, &resp); err != nil {
			return nil, h, err
		}
	} else if dc.tls != tlsOff && dc.tls != tlsPreferred {
		return nil, h, errors.New("mysqlpool: the origin does not offer TLS, which the origin URL requires")
	}
	resp.SSLRequest = false
	resp.AuthPlugin, resp.AuthData, err = ls.firstAuth(h.AuthPlugin)
	if err != nil {
		return nil, h, err
	}
	if err := ls.write(resp.Append(nil, ls.seq)); err != nil {
		return nil, h, err
	}
	if err := ls.authResult(resp.AuthPlugin); err != nil {
		return nil, h, err
	}
	ls.nc.SetDeadline(time.Time{})
	return ls.nc, h, nil
}

// response is the handshake response for key, without its auth data.
func (ls *loginState) response(h mysqlwire.Handshake, dc *dialConfig, key connKey) mysqlwire.Response {
	caps := originCaps | key.caps()&formatCaps
	resp := mysqlwire.Response{Capabilities: caps, Collation: defaultCollation, User: ls.acc.user, Database: dc.db,
		Attrs: clientAttrs}
	if id := key.collation(); id != 0 {
		if _, err := charset.GetCollationByID(int(id)); err == nil {
			resp.Collation = id
		}
	}
	// MariaDB's extended capabilities: asked for only over plain TCP, as before the pool spoke
	// the handshake itself, so that the edge's greeting for a TLS origin stays what it was.
	if ext := h.ExtCapabilities & extMetadata; key.extMetadata() && dc.tls == tlsOff && ext != 0 {
		resp.Capabilities &^= mysql.CLIENT_LONG_PASSWORD
		resp.ExtCapabilities = ext
	}
	return resp
}

// startTLS sends the SSLRequest and upgrades the connection; resp keeps CLIENT_SSL.
func (ls *loginState) startTLS(ctx context.Context, dc *dialConfig, resp *mysqlwire.Response) error {
	resp.Capabilities |= mysql.CLIENT_SSL
	resp.SSLRequest = true
	if err := ls.write(resp.Append(nil, ls.seq)); err != nil {
		return err
	}
	cfg := &tls.Config{InsecureSkipVerify: true}
	if dc.tls == tlsVerify {
		host, _, _ := net.SplitHostPort(dc.addr)
		cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	tc := tls.Client(ls.nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	ls.nc, ls.tls = tc, true
	ls.r = mysqlwire.NewReader(tc, mysqlwire.MaxHandshakeLen)
	return nil
}

// firstAuth is the plugin and auth data of the handshake response: the origin's plugin when
// the pool can answer it, else mysql_native_password (the origin then switches, or refuses).
func (ls *loginState) firstAuth(plugin string) (string, []byte, error) {
	if ls.acc.hash != nil || !authAnswerable(plugin) {
		plugin = mysqlwire.NativePassword
	}
	data, err := ls.authData(plugin, ls.salt)
	return plugin, data, err
}

func authAnswerable(plugin string) bool {
	switch plugin {
	case mysqlwire.NativePassword, mysqlwire.CachingSHA2Password, mysql.AUTH_MARIADB_ED25519, mysql.AUTH_CLEAR_PASSWORD:
		return true
	}
	return false
}

// authData answers plugin's challenge salt.
func (ls *loginState) authData(plugin string, salt []byte) ([]byte, error) {
	if ls.acc.hash != nil {
		if plugin != mysqlwire.NativePassword {
			return nil, fmt.Errorf("mysqlpool: the origin asks role %q for %s; a role logs in with mysql_native_password only", ls.acc.user, plugin)
		}
		return mysqlwire.NativeScramble(salt[:min(len(salt), mysqlwire.SaltLen)], ls.acc.hash), nil
	}
	pw := ls.acc.password
	switch plugin {
	case mysqlwire.NativePassword:
		if pw == "" {
			return nil, nil
		}
		return mysql.CalcNativePassword(salt[:min(len(salt), mysqlwire.SaltLen)], []byte(pw)), nil
	case mysqlwire.CachingSHA2Password:
		return mysql.CalcCachingSha2Password(salt, []byte(pw)), nil
	case mysql.AUTH_MARIADB_ED25519:
		if len(salt) != 32 {
			return nil, errors.New("mysqlpool: malformed ed25519 challenge from the origin")
		}
		return mysql.CalcEd25519Password(salt, pw)
	case mysql.AUTH_CLEAR_PASSWORD:
		if !ls.tls {
			return nil, errors.New("mysqlpool: the origin asks for the password in clear text over a connection without TLS")
		}
		return append([]byte(pw), 0), nil
	}
	return nil, fmt.Errorf("mysqlpool: the origin asks for authentication plugin %q, which the pool does not speak", plugin)
}

// authResult reads the origin's answers to the handshake response until its OK: an auth switch
// (once), caching_sha2_password's fast or full authentication.
func (ls *loginState) authResult(plugin string) error {
	switched := false
	for {
		p, err := ls.read()
		if err != nil {
			return err
		}
		switch {
		case len(p) == 0:
			return errMalformed
		case p[0] == hdrOK:
			return nil
		case p[0] == hdrERR:
			return parseMyError(p)
		case p[0] == hdrEOF && !switched:
			sw, ok := mysqlwire.ParseAuthSwitch(p)
			if !ok {
				return errMalformed
			}
			switched, plugin = true, sw.Plugin
			ls.salt = append([]byte(nil), sw.Data...)
			data, err := ls.authData(plugin, ls.salt)
			if err != nil {
				return err
			}
			if err := ls.write(mysqlwire.AppendPacket(nil, ls.seq, data)); err != nil {
				return err
			}
		case p[0] == 0x01 && plugin == mysqlwire.CachingSHA2Password:
			if err := ls.sha2More(p[1:]); err != nil {
				return err
			}
		default:
			return errMalformed
		}
	}
}

// caching_sha2_password's AuthMoreData: 3, fast authentication done (the OK follows); 4, send
// the password, in clear over TLS, else encrypted with the origin's RSA key, asked for.
func (ls *loginState) sha2More(p []byte) error {
	if len(p) != 1 {
		return errMalformed
	}
	switch p[0] {
	case 3:
		return nil
	case 4:
		pw := append([]byte(ls.acc.password), 0)
		if ls.tls {
			return ls.write(mysqlwire.AppendPacket(nil, ls.seq, pw))
		}
		if err := ls.write(mysqlwire.AppendPacket(nil, ls.seq, []byte{2})); err != nil {
			return err
		}
		key, err := ls.read()
		if err != nil {
			return err
		}
		enc, err := encryptPassword(pw, ls.salt, key)
		if err != nil {
			return err
		}
		return ls.write(mysqlwire.AppendPacket(nil, ls.seq, enc))
	}
	return errMalformed
}

// encryptPassword encrypts pw (with its NUL), xored with salt, with the RSA public key in the
// origin's AuthMoreData packet p.
func encryptPassword(pw, salt, p []byte) ([]byte, error) {
	if len(p) < 1 || p[0] != 0x01 {
		return nil, errMalformed
	}
	block, _ := pem.Decode(p[1:])
	if block == nil {
		return nil, errMalformed
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errMalformed
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errMalformed
	}
	x := make([]byte, len(pw))
	for i := range pw {
		x[i] = pw[i] ^ salt[i%len(salt)]
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, rk, x, nil)
}

// read reads the origin's next packet and returns its payload.
func (ls *loginState) read() ([]byte, error) {
	raw, err := ls.r.ReadPacket()
	if err != nil {
		return nil, err
	}
	ls.seq = mysqlwire.LastSeq(raw) + 1
	return mysqlwire.Payload(raw), nil
}

func (ls *loginState) write(b []byte) error {
	ls.seq++
	_, err := ls.nc.Write(b)
	return err
}

// parseMyError reads an ERR packet's payload as go-mysql's error type, which classifyConnect
// and safeError read.
func parseMyError(p []byte) error {
	if len(p) < 3 {
		return errMalformed
	}
	e := &mysql.MyError{Code: binary.LittleEndian.Uint16(p[1:])}
	msg := p[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		e.State, msg = string(msg[1:6]), msg[6:]
	}
	e.Message = string(msg)
	return e
}

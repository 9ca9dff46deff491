package mysqlwire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
)

// ourCaps is what a test server advertises.
const ourCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_FOUND_ROWS | mysql.CLIENT_LONG_FLAG |
	mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_TRANSACTIONS |
	mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_MULTI_STATEMENTS | mysql.CLIENT_MULTI_RESULTS |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
	mysql.CLIENT_DEPRECATE_EOF

// testServer accepts clients with cfg and answers every command with OK until COM_QUIT. It
// sends what each Accept returned on results.
func testServer(t *testing.T, cfg Config) (addr string, results chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results = make(chan error, 16)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c, err := Accept(context.Background(), nc, cfg)
			if err == nil {
				err = c.Finish(mysql.SERVER_STATUS_AUTOCOMMIT)
			}
			results <- err
			if err != nil {
				nc.Close()
				continue
			}
			for {
				raw, err := c.Reader.ReadPacket()
				if err != nil || Payload(raw)[0] == mysql.COM_QUIT {
					break
				}
				c.Net.Write(AppendOK(nil, 1, mysql.SERVER_STATUS_AUTOCOMMIT))
			}
			c.Net.Close()
		}
	}()
	return ln.Addr().String(), results
}

func config(advertise, plugin string, tlsConfig *tls.Config) Config {
	return Config{
		Handshake: Handshake{ServerVersion: "10.11.0-MariaDB", ConnID: 7, Capabilities: ourCaps,
			Collation: 45, Status: mysql.SERVER_STATUS_AUTOCOMMIT, AuthPlugin: advertise},
		TLS: tlsConfig,
		Lookup: func(r *Response) (Account, error) {
			if r.Database != "app" {
				return Account{}, Errorf(ErBadDB, r.Database)
			}
			return Account{User: "app", Password: "s3cret", Plugin: plugin}, nil
		},
	}
}

func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func ping(addr, user, password, db, params string) error {
	dsn := user + ":" + password + "@tcp(" + addr + ")/" + db + "?timeout=5s" + params
	conn, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return conn.PingContext(ctx)
}

func TestGoSQLDriverLogsIn(t *testing.T) {
	tlsConfig := serverTLS(t)
	for _, tc := range []struct {
		name               string
		advertise, plugin  string
		user, password, db string
		params             string
		wantCode           Code // 0: success
	}{
		{"native password", NativePassword, NativePassword, "app", "s3cret", "app", "", 0},
		{"caching_sha2 fast path", CachingSHA2Password, CachingSHA2Password, "app", "s3cret", "app", "", 0},
		{"switch from native to caching_sha2", NativePassword, CachingSHA2Password, "app", "s3cret", "app", "", 0},
		{"switch from caching_sha2 to native", CachingSHA2Password, NativePassword, "app", "s3cret", "app", "", 0},
		{"native over TLS", NativePassword, NativePassword, "app", "s3cret", "app", "&tls=skip-verify", 0},
		{"caching_sha2 over TLS", CachingSHA2Password, CachingSHA2Password, "app", "s3cret", "app", "&tls=skip-verify", 0},
		{"wrong native password is 1045", NativePassword, NativePassword, "app", "nope", "app", "", ErAccessDenied},
		{"wrong user is 1045", NativePassword, NativePassword, "root", "s3cret", "app", "", ErAccessDenied},
		{"wrong caching_sha2 password goes through RSA to 1045", CachingSHA2Password, CachingSHA2Password, "app", "nope", "app", "", ErAccessDenied},
		{"wrong caching_sha2 password over TLS is 1045", CachingSHA2Password, CachingSHA2Password, "app", "nope", "app", "&tls=skip-verify", ErAccessDenied},
		{"unknown database is 1049", NativePassword, NativePassword, "app", "s3cret", "nosuch", "", ErBadDB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, results := testServer(t, config(tc.advertise, tc.plugin, tlsConfig))
			err := ping(addr, tc.user, tc.password, tc.db, tc.params)
			serverErr := <-results
			if tc.wantCode == 0 {
				if err != nil || serverErr != nil {
					t.Fatalf("client: %v, server: %v", err, serverErr)
				}
				return
			}
			var me *driver.MySQLError
			if !errors.As(err, &me) || me.Number != uint16(tc.wantCode) || string(me.SQLState[:]) != tc.wantCode.State() {
				t.Fatalf("client got %v, want error %d", err, tc.wantCode)
			}
			var se *Error
			if !errors.As(serverErr, &se) || se.Code != tc.wantCode {
				t.Fatalf("Accept returned %v, want error %d", serverErr, tc.wantCode)
			}
		})
	}
}

// rawClient speaks the client side of the connection phase by hand, for the paths no driver
// takes on its own.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  *Reader
}

func dialRaw(t *testing.T, addr string) (*rawClient, Handshake) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, r: NewReader(nc, 1<<20)}
	p := c.read()
	var hs Handshake
	i := 1 + len(p[1:]) - len(p[1:])
	end := 1
	for p[end] != 0 {
		end++
	}
	hs.ServerVersion = string(p[i:end])
	p = p[end+1:]
	hs.ConnID = binary.LittleEndian.Uint32(p)
	copy(hs.Salt[:8], p[4:12])
	hs.Capabilities = uint32(binary.LittleEndian.Uint16(p[13:]))
	hs.Collation = p[15]
	hs.Status = binary.LittleEndian.Uint16(p[16:])
	hs.Capabilities |= uint32(binary.LittleEndian.Uint16(p[18:])) << 16
	copy(hs.Salt[8:], p[31:43])
	hs.AuthPlugin = string(p[44 : len(p)-1])
	return c, hs
}

func (c *rawClient) read() []byte {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	raw, err := c.r.ReadPacket()
	if err != nil {
		c.t.Fatal(err)
	}
	return Payload(raw)
}

func (c *rawClient) write(seq byte, payload []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(AppendPacket(nil, seq, payload)); err != nil {
		c.t.Fatal(err)
	}
}

func response(user string, auth []byte, db, plugin string) []byte {
	caps := uint32(mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH |
		mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_DEPRECATE_EOF)
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45)
	p = append(p, make([]byte, 23)...)
	p = append(append(p, user...), 0)
	p = append(append(p, byte(len(auth))), auth...)
	p = append(append(p, db...), 0)
	return append(append(p, plugin...), 0)
}

func TestCachingSHA2FullAuthWithRSA(t *testing.T) {
	addr, results := testServer(t, config(CachingSHA2Password, CachingSHA2Password, nil))
	c, hs := dialRaw(t, addr)
	if hs.ServerVersion != "10.11.0-MariaDB" || hs.ConnID != 7 || hs.Collation != 45 {
		t.Fatalf("handshake %+v", hs)
	}
	if hs.Capabilities&mysql.CLIENT_SSL != 0 {
		t.Fatal("CLIENT_SSL advertised without a TLS configuration")
	}
	// A scramble that doesn't match (as from a client that lost the cache's race) asks
	// for the full exchange.
	c.write(1, response("app", make([]byte, 32), "app", CachingSHA2Password))
	if p := c.read(); len(p) != 2 || p[0] != authMoreData || p[1] != performFullAuth {
		t.Fatalf("got %x, want perform-full-authentication", p)
	}
	c.write(3, []byte{requestPublicKey})
	p := c.read()
	block, _ := pem.Decode(p[1:])
	if p[0] != authMoreData || block == nil {
		t.Fatalf("got %q, want a PEM public key", p)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	plain := mysql.Xor(append([]byte("s3cret"), 0), hs.Salt[:])
	enc, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub.(*rsa.PublicKey), plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.write(5, enc)
	if p := c.read(); p[0] != 0 {
		t.Fatalf("got %x, want OK", p)
	}
	if err := <-results; err != nil {
		t.Fatal(err)
	}
}

func TestPlaintextAfterSSLRequestFailsTheTLSHandshake(t *testing.T) {
	addr, results := testServer(t, config(NativePassword, NativePassword, serverTLS(t)))
	c, _ := dialRaw(t, addr)
	ssl := response("", nil, "", "")[:32]
	binary.LittleEndian.PutUint32(ssl, binary.LittleEndian.Uint32(ssl)|mysql.CLIENT_SSL)
	pkt := AppendPacket(nil, 1, ssl)
	pkt = AppendPacket(pkt, 2, response("app", nil, "app", NativePassword))
	c.nc.Write(pkt)
	if err := <-results; err == nil {
		t.Fatal("Accept let a client in with plaintext after its SSLRequest")
	}
}

func TestClientWithoutPluginAuthCannotSwitch(t *testing.T) {
	addr, results := testServer(t, config(NativePassword, CachingSHA2Password, nil))
	c, _ := dialRaw(t, addr)
	p := response("app", nil, "app", "")
	binary.LittleEndian.PutUint32(p, binary.LittleEndian.Uint32(p)&^mysql.CLIENT_PLUGIN_AUTH)
	c.write(1, p[:len(p)-1])
	if p := c.read(); p[0] != 0xff || binary.LittleEndian.Uint16(p[1:]) != uint16(ErNotSupportedAuthMode) {
		t.Fatalf("got %x, want ERR 1251", p)
	}
	<-results
}

func TestTrustLetsAnyUserIn(t *testing.T) {
	cfg := config(CachingSHA2Password, CachingSHA2Password, nil)
	cfg.Lookup = func(*Response) (Account, error) { return Account{User: "slipstream", Trust: true}, nil }
	addr, results := testServer(t, cfg)
	if err := ping(addr, "root", "whatever", "app", ""); err != nil {
		t.Fatal(err)
	}
	if err := <-results; err != nil {
		t.Fatal(err)
	}
}

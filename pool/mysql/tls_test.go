package mysqlpool

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// answerer answers every query with one row holding the query's text.
type answerer struct{ server.EmptyHandler }

func (answerer) UseDB(string) error { return nil }

func (answerer) HandleQuery(q string) (*mysql.Result, error) {
	rs, err := mysql.BuildSimpleTextResultset([]string{"q"}, [][]any{{q}})
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}

// tlsOrigin serves go-mysql's server on loopback with TLS and the given default auth method,
// for user u with password pw, and returns its address.
func tlsOrigin(t *testing.T, auth string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "origin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv := server.NewServer("8.0.36", 45, auth, key, conf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				ah := server.NewInMemoryAuthenticationHandler(auth)
				ah.AddUser("u", "pw")
				c, err := srv.NewCustomizedConn(nc, ah, answerer{})
				if err != nil {
					return
				}
				c.SetStatus(mysql.SERVER_STATUS_AUTOCOMMIT)
				for !c.Closed() {
					if err := c.HandleCommand(); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTLSAndCachingSHA2ToTheOrigin(t *testing.T) {
	for _, auth := range []string{mysql.AUTH_NATIVE_PASSWORD, mysql.AUTH_CACHING_SHA2_PASSWORD} {
		addr := tlsOrigin(t, auth)
		for range 2 { // a second pool's connection takes caching_sha2's fast path
			p := newPool(t, Config{Origin: "mysql://u:pw@" + addr + "/db?tls=skip-verify", MaxConns: 1})
			a := open(t, p, clientCaps)
			if got := a.value("SELECT 'over tls'"); got != "SELECT 'over tls'" {
				t.Errorf("%s: got %q", auth, got)
			}
			var idle []*originConn
			p.slots.EachIdle(func(c *originConn) { idle = append(idle, c) })
			if len(idle) != 1 || !idle[0].tls {
				t.Errorf("%s: the origin connection is not TLS", auth)
			}
		}
	}
}

package proxy

import (
	"bytes"
	"crypto/tls"
	"regexp"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// SHOW STATUS answers about the session's connection, and for Ssl_version and Ssl_cipher the
// connection a client means is its own to the edge, not the pool's to the origin (which may
// use TLS when the client does not, or the other way round). The edge rewrites those two rows
// of a SHOW [SESSION] STATUS answer with the client's TLS session ('' without TLS, as
// MariaDB says for a plain connection). Other ways to read them (information_schema's
// SESSION_STATUS) still answer about the origin connection.

// showSessionStatus matches SHOW STATUS and SHOW SESSION|LOCAL STATUS (not GLOBAL).
var showSessionStatus = regexp.MustCompile(`(?is)^\s*SHOW\s+(?:SESSION\s+|LOCAL\s+)?STATUS\b`)

// isShowStatus says whether query is SHOW [SESSION|LOCAL] STATUS. Every COM_QUERY asks, so
// the regular expression only sees queries that start with SHOW.
func isShowStatus(query []byte) bool {
	q := bytes.TrimLeft(query, " \t\r\n")
	return len(q) >= 4 && bytes.EqualFold(q[:4], []byte("show")) && showSessionStatus.Match(q)
}

// tlsStatus is what the session's Ssl_version and Ssl_cipher are.
func (sess *mysqlSession) tlsStatus() (version, cipher string) {
	tc, ok := sess.nc.(*tls.Conn)
	if !ok {
		return "", ""
	}
	st := tc.ConnectionState()
	return tlsVersionName(st.Version), opensslCipherName(st.CipherSuite)
}

// tlsVersionName is a TLS version as MariaDB (OpenSSL) names it.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return ""
}

// opensslNames are OpenSSL's names of the TLS 1.2 suites Go offers; TLS 1.3 suites have the
// same name in both.
var opensslNames = map[uint16]string{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
}

func opensslCipherName(id uint16) string {
	if n, ok := opensslNames[id]; ok {
		return n
	}
	return tls.CipherSuiteName(id)
}

// rewriteSSLStatus returns b (whole packets of a SHOW STATUS answer) with the values of the
// rows Ssl_version and Ssl_cipher replaced. A row is a packet of exactly two length-encoded
// strings; column definitions and the rest never are. dst is reused for the result.
func rewriteSSLStatus(dst, b []byte, version, cipher string) []byte {
	dst = dst[:0]
	changed := false
	for len(b) >= mysqlwire.HeaderLen {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if len(b) < mysqlwire.HeaderLen+n {
			break
		}
		p := b[mysqlwire.HeaderLen : mysqlwire.HeaderLen+n]
		name, value, ok := twoStrings(p)
		var nv string
		switch {
		case ok && string(name) == "Ssl_version" && string(value) != version:
			nv = version
		case ok && string(name) == "Ssl_cipher" && string(value) != cipher:
			nv = cipher
		default:
			dst = append(dst, b[:mysqlwire.HeaderLen+n]...)
			b = b[mysqlwire.HeaderLen+n:]
			continue
		}
		changed = true
		var at int
		dst, at = mysqlwire.BeginPacket(dst, b[3])
		dst = mysql.AppendLengthEncodedInteger(dst, uint64(len(name)))
		dst = append(dst, name...)
		dst = mysql.AppendLengthEncodedInteger(dst, uint64(len(nv)))
		dst = append(dst, nv...)
		dst = mysqlwire.FinishPacket(dst, at)
		b = b[mysqlwire.HeaderLen+n:]
	}
	if !changed {
		return nil
	}
	return append(dst, b...)
}

// twoStrings splits p into two length-encoded strings of at most 250 bytes each (a status
// row), or reports false.
func twoStrings(p []byte) (a, b []byte, ok bool) {
	if len(p) < 2 || p[0] > 250 || len(p) < 1+int(p[0])+1 {
		return nil, nil, false
	}
	a, p = p[1:1+int(p[0])], p[1+int(p[0]):]
	if p[0] > 250 || len(p) != 1+int(p[0]) {
		return nil, nil, false
	}
	return a, p[1:], true
}

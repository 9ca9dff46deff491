package pgwire

import "crypto/tls"

// ServerTLSConfig returns the TLS configuration for client connections with cert (package certs
// makes or loads it).
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// PostgreSQL's ALPN name. libpq 17+ sends it and requires it for sslnegotiation=direct;
		// a client that sends no ALPN at all is unaffected.
		NextProtos: []string{"postgresql"},
	}
}

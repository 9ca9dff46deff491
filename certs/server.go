package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Names of the self-signed certificate and key inside the directory given to LoadOrCreate, as
// in a PostgreSQL data directory.
const (
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// LoadOrCreate returns the certificate the client listeners present. If certFile and keyFile
// are set it loads them. If both are empty it uses dir/server.crt and dir/server.key, first
// creating a self-signed pair there (CN slipstream, for localhost, 127.0.0.1 and ::1) when
// neither exists; the directory is created 0700. It refuses to guess when only one of a pair is
// given or present.
func LoadOrCreate(certFile, keyFile, dir string) (tls.Certificate, error) {
	switch {
	case certFile != "" && keyFile != "":
		return load(certFile, keyFile)
	case certFile != "" || keyFile != "":
		return tls.Certificate{}, errors.New("certs: tls certificate and key must be set together")
	case dir == "":
		return tls.Certificate{}, errors.New("certs: no tls certificate and no directory to create one in")
	}
	certFile, keyFile = filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
	certExists, err := exists(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	switch {
	case certExists && keyExists:
		return load(certFile, keyFile)
	case certExists || keyExists:
		return tls.Certificate{}, fmt.Errorf("certs: found only one of %s and %s; remove it or provide both", certFile, keyFile)
	}
	if err := createServer(certFile, keyFile, dir); err != nil {
		return tls.Certificate{}, err
	}
	return load(certFile, keyFile)
}

// createServer writes a self-signed server certificate. It is its own issuer, so that clients
// can trust it as a root with sslrootcert=server.crt and sslmode=verify-full.
func createServer(certFile, keyFile, dir string) error {
	tmpl, err := template("slipstream")
	if err != nil {
		return err
	}
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	cert, key, err := issue(tmpl, nil, nil)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: create tls directory: %w", err)
	}
	return writePair(certFile, keyFile, cert, key)
}

func load(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: load tls certificate: %w", err)
	}
	return cert, nil
}

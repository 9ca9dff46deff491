package pgwire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the generated certificate and key inside the directory given to
// LoadOrCreateCertificate, as in a PostgreSQL data directory.
const (
	certFileName = "server.crt"
	keyFileName  = "server.key"
)

// LoadOrCreateCertificate returns the server certificate. If certFile and keyFile are set it
// loads them. If both are empty it uses dir/server.crt and dir/server.key, first creating a
// self-signed ECDSA P-256 pair there (CN slipstream, for localhost, 127.0.0.1 and ::1, valid
// 10 years) when neither exists; the directory is created 0700 and the key written 0600. It
// refuses to guess when only one of a pair is given or present.
func LoadOrCreateCertificate(certFile, keyFile, dir string) (tls.Certificate, error) {
	switch {
	case certFile != "" && keyFile != "":
		return loadCertificate(certFile, keyFile)
	case certFile != "" || keyFile != "":
		return tls.Certificate{}, errors.New("pgwire: tls certificate and key must be set together")
	case dir == "":
		return tls.Certificate{}, errors.New("pgwire: no tls certificate and no directory to create one in")
	}
	certFile, keyFile = filepath.Join(dir, certFileName), filepath.Join(dir, keyFileName)
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
		return loadCertificate(certFile, keyFile)
	case certExists || keyExists:
		return tls.Certificate{}, fmt.Errorf("pgwire: found only one of %s and %s; remove it or provide both", certFile, keyFile)
	}
	if err := createCertificate(certFile, keyFile, dir); err != nil {
		return tls.Certificate{}, err
	}
	return loadCertificate(certFile, keyFile)
}

// ServerTLSConfig returns the TLS configuration for client connections.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// PostgreSQL's ALPN name. libpq 17+ sends it and requires it for sslnegotiation=direct;
		// a client that sends no ALPN at all is unaffected.
		NextProtos: []string{"postgresql"},
	}
}

func loadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pgwire: load tls certificate: %w", err)
	}
	return cert, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgwire: tls certificate: %w", err)
	}
	return true, nil
}

func createCertificate(certFile, keyFile, dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pgwire: create tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("pgwire: create tls certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "slipstream"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour), // tolerate clients whose clocks run a little behind
		NotAfter:     now.AddDate(10, 0, 0),
		// Self-signed and its own issuer, so that clients can trust it as a root with
		// sslrootcert=server.crt and sslmode=verify-full.
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pgwire: create tls certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pgwire: create tls key: %w", err)
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pgwire: create tls directory: %w", err)
	}
	// The key goes first and both are created exclusively, so a concurrent start cannot mix
	// two pairs; a failure removes what this call wrote.
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyFile)
		return err
	}
	return nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("pgwire: write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("pgwire: write %s: %w", path, err)
	}
	return nil
}

package tunnel

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

// Files in a certificates directory, as CreateCerts writes them: the deployment CA, and one
// certificate per node role. Every node certificate is good for both ends of a TLS handshake,
// since with the reverse tunnel a pool dials its edge.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// Node roles: each has NAME.crt and NAME.key in the certificates directory.
const (
	NodeEdge = "edge"
	NodePool = "pool"
)

// CreateCerts creates a deployment CA and a certificate for each node role in dir (ECDSA P-256,
// valid for ten years, names localhost, 127.0.0.1, ::1 and hostnames), and returns the files it
// wrote. It never overwrites a file: an existing CA signs the node certificates that are missing,
// and an existing node certificate is kept. Keys are written with mode 0600.
func CreateCerts(dir string, hostnames ...string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	caCert, caKey, err := loadCA(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if exists(filepath.Join(dir, CAFile)) || exists(filepath.Join(dir, CAKeyFile)) {
			return nil, fmt.Errorf("certs: only one of %s and %s is in %s: remove it or bring the other back", CAFile, CAKeyFile, dir)
		}
		tmpl := template("slipstream deployment CA")
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		if caCert, caKey, err = issue(tmpl, nil, nil); err != nil {
			return nil, err
		}
		if err := writeCert(dir, CAFile, CAKeyFile, caCert, caKey); err != nil {
			return nil, err
		}
		written = append(written, CAFile, CAKeyFile)
	} else if err != nil {
		return nil, err
	}
	for _, node := range []string{NodeEdge, NodePool} {
		crt, key := node+".crt", node+".key"
		if exists(filepath.Join(dir, crt)) || exists(filepath.Join(dir, key)) {
			continue
		}
		tmpl := template("slipstream " + node)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		for _, h := range hostnames {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != "" && h != "localhost" {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		cert, k, err := issue(tmpl, caCert, caKey)
		if err != nil {
			return written, err
		}
		if err := writeCert(dir, crt, key, cert, k); err != nil {
			return written, err
		}
		written = append(written, crt, key)
	}
	return written, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// template is a certificate template with a random serial number.
func template(cn string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"slipstream"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
	}
}

// issue creates a key and a certificate for tmpl, signed by the CA, or self-signed when ca is nil.
func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if ca == nil {
		ca, caKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// writeCert writes a certificate (0644) and its key (0600), failing if either file exists.
func writeCert(dir, crtName, keyName string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeNew(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeNew(filepath.Join(dir, crtName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("certs: %w", err)
	}
	return f.Close()
}

// loadCA reads the CA certificate and key of dir.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", CAFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("certs: %s is not an ECDSA key", CAKeyFile)
	}
	return cert, key, nil
}

// LoadTLS returns the TLS configuration of a node of the tunnel: it presents DIR/NODE.crt and
// accepts a peer only with a certificate that the deployment CA in DIR/ca.crt signed, whichever
// side of the handshake it is on. Peers are checked against the CA, not against a host name:
// every holder of a node certificate is a member of the deployment, and pools are reached by
// addresses that the certificates need not name.
func LoadTLS(dir, node string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key"))
	if err != nil {
		return nil, fmt.Errorf("tunnel certificate (create one with `slipstream certs --dir %s`): %w", dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("tunnel CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tunnel CA: no certificate in %s", filepath.Join(dir, CAFile))
	}
	return newTLS(pair, roots), nil
}

// newTLS returns a mutual TLS 1.3 configuration that presents cert and accepts only peers with a
// certificate signed by one of roots.
func newTLS(cert tls.Certificate, roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{alpn},
		// As a server: the client's certificate is required and checked by crypto/tls.
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  roots,
		// As a client: crypto/tls's check would include the host name, so it is replaced by
		// VerifyConnection's check of the chain alone. InsecureSkipVerify only turns off the
		// host-name part here; VerifyConnection runs on every handshake and fails it.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tunnel: the peer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         roots,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err != nil {
				return fmt.Errorf("tunnel: the peer's certificate is not from this deployment's CA: %w", err)
			}
			return nil
		},
	}
}

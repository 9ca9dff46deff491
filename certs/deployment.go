package certs

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
)

// Files in a deployment's certificates directory, as CreateDeployment writes them: the CA, and
// NODE.crt and NODE.key for each node role. Every node certificate is good for both ends of a
// TLS handshake, since with the reverse tunnel a pool dials its edge.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// Node roles.
const (
	NodeEdge = "edge"
	NodePool = "pool"
)

// CreateDeployment creates a deployment CA and a certificate for each node role in dir (names
// localhost, 127.0.0.1, ::1 and hostnames), and returns the files it wrote. It never overwrites
// a file: an existing CA signs the node certificates that are missing, and an existing node
// certificate is kept.
func CreateDeployment(dir string, hostnames ...string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	var written []string
	caCert, caKey, err := loadCA(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if caCert, caKey, err = createCA(dir); err != nil {
			return nil, err
		}
		written = append(written, CAFile, CAKeyFile)
	} else if err != nil {
		return nil, err
	}
	for _, node := range []string{NodeEdge, NodePool} {
		crt, key := node+".crt", node+".key"
		crtExists, err := exists(filepath.Join(dir, crt))
		if err != nil {
			return written, err
		}
		keyExists, err := exists(filepath.Join(dir, key))
		if err != nil {
			return written, err
		}
		if crtExists || keyExists {
			continue
		}
		if err := createNode(dir, node, hostnames, caCert, caKey); err != nil {
			return written, err
		}
		written = append(written, crt, key)
	}
	return written, nil
}

// createCA writes a new CA to dir, unless half of one is there.
func createCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	for _, f := range []string{CAFile, CAKeyFile} {
		if ok, err := exists(filepath.Join(dir, f)); err != nil || ok {
			if err == nil {
				err = fmt.Errorf("certs: only one of %s and %s is in %s: remove it or bring the other back", CAFile, CAKeyFile, dir)
			}
			return nil, nil, err
		}
	}
	tmpl, err := template("slipstream deployment CA", "slipstream")
	if err != nil {
		return nil, nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	cert, key, err := issue(tmpl, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), cert, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// createNode writes NODE.crt and NODE.key, signed by the CA.
func createNode(dir, node string, hostnames []string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	tmpl, err := template("slipstream "+node, "slipstream")
	if err != nil {
		return err
	}
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
	cert, key, err := issue(tmpl, ca, caKey)
	if err != nil {
		return err
	}
	return writePair(filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key"), cert, key)
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

// LoadNode reads the certificate of a node role from a deployment's directory, and the pool of
// the deployment's CA that its peers' certificates must chain to.
func LoadNode(dir, node string) (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key"))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tunnel certificate (create one with `slipstream certs --dir %s`): %w", dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tunnel CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("tunnel CA: no certificate in %s", filepath.Join(dir, CAFile))
	}
	return pair, roots, nil
}

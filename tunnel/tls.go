package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/slipstream-proxy/slipstream/certs"
)

// LoadTLS returns the TLS configuration of a node of the tunnel (node is certs.NodeEdge or
// certs.NodePool, as certs.CreateDeployment writes them): it presents DIR/NODE.crt and
// accepts a peer only with a certificate that the deployment CA in DIR/ca.crt signed, whichever
// side of the handshake it is on. Peers are checked against the CA, not against a host name:
// every holder of a node certificate is a member of the deployment, and pools are reached by
// addresses that the certificates need not name.
func LoadTLS(dir, node string) (*tls.Config, error) {
	pair, roots, err := certs.LoadNode(dir, node)
	if err != nil {
		return nil, err
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

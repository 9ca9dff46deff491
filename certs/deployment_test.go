package certs

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCreateDeploymentSignsEachNodeWithOneCAAndNeverOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	written, err := CreateDeployment(dir, "db.example", "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{CAFile, CAKeyFile, "edge.crt", "edge.key", "pool.crt", "pool.key"}
	if !slices.Equal(written, want) {
		t.Fatalf("wrote %v, want %v", written, want)
	}
	for _, node := range []string{NodeEdge, NodePool} {
		cert, roots, err := LoadNode(dir, node)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: not a client certificate of the CA: %v", node, err)
		}
		for _, host := range []string{"localhost", "127.0.0.1", "::1", "db.example", "10.0.0.7"} {
			if err := leaf.VerifyHostname(host); err != nil {
				t.Errorf("%s: %v", node, err)
			}
		}
		if fi, err := os.Stat(filepath.Join(dir, node+".key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.key: %v, %v", node, fi.Mode(), err)
		}
	}

	t.Run("a second run writes nothing", func(t *testing.T) {
		again, err := CreateDeployment(dir)
		if err != nil || len(again) != 0 {
			t.Errorf("second run wrote %v, %v", again, err)
		}
	})
	t.Run("a missing node certificate is signed by the CA already there", func(t *testing.T) {
		ca, _ := os.ReadFile(filepath.Join(dir, CAFile))
		os.Remove(filepath.Join(dir, "pool.crt"))
		os.Remove(filepath.Join(dir, "pool.key"))
		again, err := CreateDeployment(dir)
		if err != nil || !slices.Equal(again, []string{"pool.crt", "pool.key"}) {
			t.Fatalf("wrote %v, %v", again, err)
		}
		if now, _ := os.ReadFile(filepath.Join(dir, CAFile)); !bytes.Equal(now, ca) {
			t.Error("the CA was replaced")
		}
		if _, _, err := LoadNode(dir, NodePool); err != nil {
			t.Error(err)
		}
	})
	t.Run("half a CA is refused rather than replaced", func(t *testing.T) {
		other := t.TempDir()
		key, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
		os.WriteFile(filepath.Join(other, CAKeyFile), key, 0o600)
		if written, err := CreateDeployment(other); err == nil {
			t.Errorf("no error; wrote %v", written)
		}
		if _, err := os.Stat(filepath.Join(other, CAFile)); err == nil {
			t.Error("ca.crt was created")
		}
	})
	t.Run("a node without its certificate is an error that says how to make one", func(t *testing.T) {
		if _, _, err := LoadNode(t.TempDir(), NodeEdge); err == nil || !bytes.Contains([]byte(err.Error()), []byte("slipstream certs")) {
			t.Errorf("LoadNode = %v", err)
		}
	})
}

package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateMakesASelfSignedServerCertificateOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	created, err := LoadOrCreate("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(created.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "slipstream" || leaf.VerifyHostname("localhost") != nil ||
		leaf.VerifyHostname("127.0.0.1") != nil || leaf.VerifyHostname("::1") != nil {
		t.Errorf("certificate names: CN %q, DNS %v, IP %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	if years := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("certificate valid for %.1f years, want 10", years)
	}
	for path, want := range map[string]fs.FileMode{dir: 0o700 | fs.ModeDir, filepath.Join(dir, "server.key"): 0o600} {
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}

	t.Run("a second call loads the same certificate", func(t *testing.T) {
		again, err := LoadOrCreate("", "", dir)
		if err != nil || !bytes.Equal(again.Certificate[0], created.Certificate[0]) {
			t.Errorf("second call: %v, same certificate: %v", err, err == nil && bytes.Equal(again.Certificate[0], created.Certificate[0]))
		}
	})
	t.Run("explicit files are loaded instead of the directory", func(t *testing.T) {
		got, err := LoadOrCreate(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), "")
		if err != nil || !bytes.Equal(got.Certificate[0], created.Certificate[0]) {
			t.Errorf("explicit files: %v", err)
		}
	})
	t.Run("a certificate file without its key is refused", func(t *testing.T) {
		if _, err := LoadOrCreate(filepath.Join(dir, "server.crt"), "", ""); err == nil {
			t.Error("no error")
		}
	})
	t.Run("a directory holding only the key is refused rather than overwritten", func(t *testing.T) {
		other := t.TempDir()
		key, _ := os.ReadFile(filepath.Join(dir, "server.key"))
		os.WriteFile(filepath.Join(other, "server.key"), key, 0o600)
		if _, err := LoadOrCreate("", "", other); err == nil {
			t.Error("no error")
		}
		if _, err := os.Stat(filepath.Join(other, "server.crt")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("server.crt was created: %v", err)
		}
	})
}

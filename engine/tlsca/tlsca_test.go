package tlsca

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssueVerifies: an issued certificate verifies with the CA's pool for
// each of its IP addresses and names, as a server and as a client, and for
// no other host; its key pairs with it.
func TestIssueVerifies(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cn := ca.Certificate().Subject.CommonName; cn != CommonName || !ca.Certificate().IsCA {
		t.Errorf("CA subject %q, IsCA %v", cn, ca.Certificate().IsCA)
	}
	certPEM, keyPEM, err := ca.Issue([]string{"127.0.0.2", "node-1.local", "::1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("the key does not pair with the certificate: %v", err)
	}
	cert := parseCert(t, certPEM)
	if cert.IsCA {
		t.Error("an issued certificate is a CA")
	}
	for _, host := range []string{"127.0.0.2", "node-1.local", "::1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("verify for %s (usage %v): %v", host, usage, err)
			}
		}
	}
	for _, host := range []string{"127.0.0.3", "node-2.local", "localhost"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()}); err == nil {
			t.Errorf("the certificate verifies for %s, which it does not name", host)
		}
	}
	other, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.2", Roots: other.Pool()}); err == nil {
		t.Error("the certificate verifies with another CA")
	}
	if _, _, err := ca.Issue(nil, time.Hour); err == nil {
		t.Error("Issue without hosts succeeded")
	}
}

// TestPersists: a second load returns the same CA, whose earlier
// certificates still verify; the key is private; concurrent first loads
// agree on one CA.
func TestPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{KeyFile: 0o600, CertFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm()&^want != 0 {
			t.Errorf("%s: %v, %v; want mode %v at most", name, fi, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, CertFile)); err != nil || !bytes.Equal(b, ca.CertPEM()) {
		t.Errorf("%s does not hold CertPEM: %v", CertFile, err)
	}
	certPEM, _, err := ca.Issue([]string{"127.0.0.2"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertPEM(), ca.CertPEM()) {
		t.Fatal("a second LoadOrCreate made another CA")
	}
	if _, err := parseCert(t, certPEM).Verify(x509.VerifyOptions{DNSName: "127.0.0.2", Roots: again.Pool()}); err != nil {
		t.Errorf("a certificate of the first load does not verify with the second: %v", err)
	}

	fresh := filepath.Join(t.TempDir(), "tls")
	var wg sync.WaitGroup
	cas := make([]*CA, 8)
	errs := make([]error, len(cas))
	for i := range cas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cas[i], errs[i] = LoadOrCreate(fresh)
		}()
	}
	wg.Wait()
	for i := range cas {
		if errs[i] != nil {
			t.Fatalf("concurrent LoadOrCreate: %v", errs[i])
		}
		if !bytes.Equal(cas[i].CertPEM(), cas[0].CertPEM()) {
			t.Fatal("concurrent first loads made different CAs")
		}
	}
}

// TestBrokenFilesRefused: a corrupt, mismatched or orphaned file is an
// error naming it, and stays as it was.
func TestBrokenFilesRefused(t *testing.T) {
	base := t.TempDir()
	good, err := LoadOrCreate(filepath.Join(base, "good"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreate(filepath.Join(base, "other"))
	if err != nil {
		t.Fatal(err)
	}
	goodKey, err := os.ReadFile(filepath.Join(base, "good", KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, leafKey, err := good.Issue([]string{"127.0.0.2"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		key, cert []byte // nil: no file
		wantInErr string // the file named
	}{
		{name: "garbage key", key: []byte("not a key"), cert: good.CertPEM(), wantInErr: KeyFile},
		{name: "garbage cert", key: goodKey, cert: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), wantInErr: CertFile},
		{name: "mismatched pair", key: goodKey, cert: other.CertPEM(), wantInErr: CertFile},
		{name: "leaf as CA", key: leafKey, cert: leafPEM, wantInErr: CertFile},
		{name: "cert without key", cert: good.CertPEM(), wantInErr: KeyFile},
		{name: "empty key", key: []byte{}, cert: good.CertPEM(), wantInErr: KeyFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name string, b []byte) {
				if b != nil {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(KeyFile, c.key)
			write(CertFile, c.cert)
			_, err := LoadOrCreate(dir)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, c.wantInErr)) {
				t.Fatalf("LoadOrCreate = %v; want an error naming %s", err, c.wantInErr)
			}
			for name, want := range map[string][]byte{KeyFile: c.key, CertFile: c.cert} {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if want == nil {
					if err == nil {
						t.Errorf("LoadOrCreate created %s", name)
					}
				} else if !bytes.Equal(b, want) {
					t.Errorf("LoadOrCreate replaced %s", name)
				}
			}
		})
	}
}

// TestKeyWithoutCert: a key a crash left without its certificate gets one.
func TestKeyWithoutCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CertFile)); err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.key.Equal(ca.key) {
		t.Error("the CA got a new key")
	}
}

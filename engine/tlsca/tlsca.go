package tlsca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
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

	"github.com/elasticache-local/elasticache-local/engine/atomicfile"
)

// Files of the CA in its directory.
const (
	CertFile = "ca.pem"     // the CA certificate, for clients to trust
	KeyFile  = "ca-key.pem" // its private key (PKCS #8), mode 0600
)

// CommonName is the subject common name of the CA certificate.
const CommonName = "elasticache-local CA"

// caValidity is how long a new CA certificate is valid.
const caValidity = 10 * 365 * 24 * time.Hour

// backdate starts certificates' validity before now, so a node or client
// whose clock is slightly behind accepts them.
const backdate = time.Hour

// CA is a loaded certificate authority. It is safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// LoadOrCreate returns the CA kept in dir (CertFile and KeyFile), creating
// dir and the CA when neither file exists. Each file is written atomically
// and never replaces an existing one, so a crash leaves no torn file and
// concurrent first calls end up with one CA; a key left without its
// certificate by a crash gets a certificate on the next call. A file that
// does not parse, a certificate without its key, or a pair that does not
// match is an error naming the file: replacing it would invalidate every
// certificate issued and every client trusting the CA.
func LoadOrCreate(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	key, err := readKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Lstat(certPath); statErr == nil {
			return nil, fmt.Errorf("tlsca: %s exists without its key %s: restore the key, or remove the certificate (every certificate it issued becomes invalid)", certPath, keyPath)
		}
		key, err = createKey(keyPath)
	}
	if err != nil {
		return nil, err
	}
	ca, err := readCert(certPath, key)
	if errors.Is(err, fs.ErrNotExist) {
		ca, err = createCert(certPath, key)
	}
	return ca, err
}

// readKey parses the CA key at path; a missing file gives fs.ErrNotExist.
func readKey(path string) (*ecdsa.PrivateKey, error) {
	block, err := readPEM(path, "PRIVATE KEY", "private key")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %s: %w", path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tlsca: %s holds a %T, want an ECDSA key", path, k)
	}
	return key, nil
}

// readPEM returns the PEM block of type typ (what, in errors) in the file
// at path; a missing file gives fs.ErrNotExist, which LoadOrCreate tells
// from a file it must not replace.
func readPEM(path, typ, what string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("tlsca: reading %s: %w", path, err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("tlsca: %s holds no PEM %s", path, what)
	}
	return block, nil
}

// createKey writes a new key to path, or reads the one written there
// concurrently.
func createKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsca: generating the CA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	err = atomicfile.Create(path, bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	if errors.Is(err, fs.ErrExist) {
		return readKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("tlsca: writing %s: %w", path, err)
	}
	return key, nil
}

// readCert parses the CA certificate at path and checks it belongs to key;
// a missing file gives fs.ErrNotExist.
func readCert(path string, key *ecdsa.PrivateKey) (*CA, error) {
	block, err := readPEM(path, "CERTIFICATE", "certificate")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %s: %w", path, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("tlsca: %s is not a CA certificate", path)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("tlsca: %s does not belong to the key beside it (%s)", path, KeyFile)
	}
	return &CA{cert: cert, certPEM: pem.EncodeToMemory(block), key: key}, nil
}

// createCert writes a new self-signed CA certificate of key to path, or
// reads the one written there concurrently.
func createCert(path string, key *ecdsa.PrivateKey) (*CA, error) {
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	ski := sha1.Sum(pubDER)
	now := time.Now()
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CommonName, Organization: []string{"elasticache-local"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: creating the CA certificate: %w", err)
	}
	err = atomicfile.Create(path, bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("tlsca: writing %s: %w", path, err)
	}
	return readCert(path, key)
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsca: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // positive, never 0
}

// CertPEM returns the CA certificate in PEM (the content of CertFile): what
// a node trusts for its peers (engine.TLSSpec.CAPEM) and clients trust for
// the nodes.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Certificate returns the parsed CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new certificate pool holding the CA certificate, for
// crypto/tls RootCAs (engine.Admin.WithCA).
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue returns a new certificate signed by the CA and its private key, in
// PEM (engine.TLSSpec.CertPEM and KeyPEM), valid for validity from now (and
// an hour before, for clocks behind). hosts are its subject alternative
// names: an IP address goes in as an IP SAN, anything else as a DNS name;
// the first is also its common name. The certificate serves both TLS ends
// (server and client authentication), as Redis uses one certificate for
// the connections it accepts and those it opens to its primary and its
// cluster peers. The key is ECDSA P-256, in PKCS #8.
func (ca *CA) Issue(hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("tlsca: Issue needs at least one host")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("tlsca: invalid validity %s", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: generating a key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"elasticache-local"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if h == "" {
			return nil, nil, errors.New("tlsca: Issue with an empty host")
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: issuing a certificate for %v: %w", hosts, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Package certgen makes a certificate authority and certificates it signs:
// what cmd/cluster --tls uses to try TLS on one machine, and what the tests
// use. A deployment uses certificates from its own authority instead
// (docs/OPERATIONS.md, "TLS").
package certgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// CA is a certificate authority: a self-signed certificate and its key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// serialBits is the size of a certificate's random serial number; RFC 5280
// allows up to 20 bytes, and CAs use at least 64 bits of randomness.
const serialBits = 128

// backdate starts a certificate's validity this long before now, so that a
// peer whose clock is a little behind accepts it.
const backdate = time.Hour

// NewCA makes an authority named name whose certificate is valid for
// validFor.
func NewCA(name string, validFor time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"dkv"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// Issue makes a certificate for hosts (DNS names or IP addresses) valid
// from notBefore to notAfter, and returns it and its key in PEM. It serves
// both as a server's and as a client's certificate, since a node both
// accepts its peers' connections and dials theirs.
func (ca *CA) Issue(name string, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	return ca.issue(name, hosts, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, notBefore, notAfter)
}

// IssueClient makes a certificate that serves only as a client's, naming
// no host: what a client presents to a port started with --tls-client-ca.
// It cannot serve as a node's (--peer-tls-cert), which the peers check
// for both uses and for the node's host, though the same authority signs
// both.
func (ca *CA) IssueClient(name string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	return ca.issue(name, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, notBefore, notAfter)
}

func (ca *CA) issue(name string, hosts []string, uses []x509.ExtKeyUsage, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"dkv"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  uses,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

// Files are the paths of an authority's certificate and of one
// certificate and key it signed, as dkv's TLS flags take them.
type Files struct {
	CA   string // the authority's certificate
	Cert string
	Key  string
}

// NodeFlags are cmd/node's flags for TLS on both ports with these files:
// the client port's certificate, and the peers' certificate and authority.
func (f Files) NodeFlags() []string {
	return []string{"--tls-cert", f.Cert, "--tls-key", f.Key,
		"--peer-tls-cert", f.Cert, "--peer-tls-key", f.Key, "--peer-tls-ca", f.CA}
}

// Write makes a new authority and one certificate for hosts, both valid
// for validFor, in dir (which holds none yet) as Ensure does: ca.pem,
// ca-key.pem, node.pem and node-key.pem, the keys private to this user.
func Write(dir string, hosts []string, validFor time.Duration) (Files, error) {
	return Ensure(dir, hosts, validFor)
}

// WriteKeypair writes a certificate and its key, the key private to this
// user.
func WriteKeypair(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, certPEM, 0o644)
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialBits))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n, nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// WriteFiles writes the authority's certificate to certPath and its key,
// private to this user, to keyPath.
func (ca *CA) WriteFiles(certPath, keyPath string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return err
	}
	return WriteKeypair(certPath, keyPath, ca.CertPEM, pemBlock("PRIVATE KEY", keyDER))
}

// ReadCA reads an authority that WriteFiles wrote (or any whose key is an
// ECDSA key in PKCS #8).
func ReadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate in it", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not an authority's certificate", certPath)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM key in it", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(cb), key: key}, nil
}

// Ensure makes dir hold an authority and a node certificate for hosts, as
// cmd/certs would, and returns their paths: what is there already is kept,
// so that clients of an earlier run still trust the authority.
func Ensure(dir string, hosts []string, validFor time.Duration) (Files, error) {
	f := Files{
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "node.pem"),
		Key:  filepath.Join(dir, "node-key.pem"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, err
	}
	caKey := filepath.Join(dir, "ca-key.pem")
	_, certErr := os.Stat(f.CA)
	_, keyErr := os.Stat(caKey)
	if errors.Is(certErr, fs.ErrNotExist) != errors.Is(keyErr, fs.ErrNotExist) {
		// One of the pair is gone (the key moved off the machine, say):
		// a new authority written over the other would leave every
		// certificate it signed, and the nodes that trust it, refusing
		// each other (found by review, as in cmd/certs).
		missing := f.CA
		if certErr == nil {
			missing = caKey
		}
		return Files{}, fmt.Errorf("%s holds one of ca.pem and ca-key.pem but not %s: put it back (or remove both to make a new authority, which every node and client must then trust)", dir, filepath.Base(missing))
	}
	ca, err := ReadCA(f.CA, caKey)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = NewCA("dkv CA", validFor); err == nil {
			err = ca.WriteFiles(f.CA, caKey)
		}
	}
	if err != nil {
		return Files{}, err
	}
	if _, err := os.Stat(f.Cert); err == nil {
		return f, nil
	}
	now := time.Now()
	notAfter := now.Add(validFor)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	certPEM, keyPEM, err := ca.Issue("dkv node", hosts, now.Add(-backdate), notAfter)
	if err != nil {
		return Files{}, err
	}
	return f, WriteKeypair(f.Cert, f.Key, certPEM, keyPEM)
}

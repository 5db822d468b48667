// Package tlsfiles reads the certificates and keys that dkv's TLS flags
// name, checks them before a server or client relies on them, and builds
// the tls.Config of each use: the client port, the peer connections, and a
// client. A Keypair rereads its files on Reload (a server's SIGHUP), and
// the configs built from it take the new certificate for every new
// connection.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// fileBytesMax bounds a certificate, key or CA file: a chain of a few
// certificates is a few KiB; a file much larger is the wrong file.
const fileBytesMax = 1 << 20

// ExpiryWarning is how long before its end a certificate is warned about
// (Keypair.Expiring).
const ExpiryWarning = 30 * 24 * time.Hour

// Keypair is a certificate chain and its key, read from two PEM files.
type Keypair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	// check, if set (Require), is what a new pair must also pass.
	check func(*tls.Certificate) error
}

// LoadKeypair reads certFile and keyFile and checks that the key is the
// certificate's and that the certificate is valid now.
func LoadKeypair(certFile, keyFile string) (*Keypair, error) {
	k := &Keypair{certFile: certFile, keyFile: keyFile}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the files again. If they no longer hold a valid pair, the
// pair served so far stays and the error says why.
func (k *Keypair) Reload() error {
	certPEM, err := readFile(k.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := readFile(k.keyFile)
	if err != nil {
		return err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("%s and %s: %w", k.certFile, k.keyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("%s: %w", k.certFile, err)
		}
	}
	now := time.Now()
	switch {
	case now.After(c.Leaf.NotAfter):
		return fmt.Errorf("%s: the certificate expired at %s", k.certFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.Leaf.NotBefore):
		return fmt.Errorf("%s: the certificate is not valid before %s", k.certFile, c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if k.check != nil {
		if err := k.check(&c); err != nil {
			return fmt.Errorf("%s: %w", k.certFile, err)
		}
	}
	k.cur.Store(&c)
	return nil
}

// Require checks the pair served now with check, and makes every later
// Reload pass it too before its pair is served: what a server checked of
// its certificate as it started holds for the ones SIGHUP loads.
func (k *Keypair) Require(check func(*tls.Certificate) error) error {
	if err := check(k.cur.Load()); err != nil {
		return fmt.Errorf("%s: %w", k.certFile, err)
	}
	k.check = check
	return nil
}

// Certificate is the pair served now.
func (k *Keypair) Certificate() *tls.Certificate { return k.cur.Load() }

// Expiring returns a warning if the certificate ends within ExpiryWarning,
// and "" otherwise.
func (k *Keypair) Expiring() string {
	leaf := k.cur.Load().Leaf
	if left := time.Until(leaf.NotAfter); left < ExpiryWarning {
		return fmt.Sprintf("%s: the certificate expires in %v, at %s; replace it and send SIGHUP", k.certFile, left.Round(time.Hour), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// Verify checks that the certificate chains to the authorities in pool for
// the given use (x509.ExtKeyUsageServerAuth, ClientAuth): a node whose
// own certificate its peers would refuse is told so as it starts.
func (k *Keypair) Verify(pool *x509.CertPool, uses ...x509.ExtKeyUsage) error {
	if err := VerifyChain(k.cur.Load(), pool, uses...); err != nil {
		return fmt.Errorf("%s: %w", k.certFile, err)
	}
	return nil
}

// VerifyChain checks that c chains to the authorities in pool for each of
// the uses.
func VerifyChain(c *tls.Certificate, pool *x509.CertPool, uses ...x509.ExtKeyUsage) error {
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(ic)
	}
	for _, use := range uses {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
			return err
		}
	}
	return nil
}

// LoadCA reads a PEM file of one or more authorities' certificates.
func LoadCA(path string) (*x509.CertPool, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Server is the client port's config: it presents kp's certificate and,
// if clientCAs is not nil, requires a client certificate that chains to
// one of them.
func Server(kp *Keypair, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.Certificate(), nil
		},
	}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// Peer is the config of a cluster's or mesh's peer connections: each side
// presents kp's certificate and requires the other's to chain to ca. Only
// dkv speaks to dkv here, so nothing older than TLS 1.3 is offered.
func Peer(kp *Keypair, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.Certificate(), nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return kp.Certificate(), nil
		},
		RootCAs:    ca,
		ClientCAs:  ca,
		ClientAuth: tls.RequireAndVerifyClientCert,
	}
}

// Client is a client's config: it trusts the authorities in caFile (the
// system's when ""), and presents the certificate in certFile and keyFile
// when they are given. serverName, when not "", is the name the server's
// certificate must carry in place of the host dialled.
func Client(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pool, err := LoadCA(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		kp, err := LoadKeypair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{*kp.Certificate()}
	case certFile != "" || keyFile != "":
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	return cfg, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > fileBytesMax {
		return nil, fmt.Errorf("%s is %d bytes; a certificate or key file is at most %d", path, st.Size(), fileBytesMax)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

package tlsfiles

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dkv/internal/certgen"
)

func certs(t *testing.T, validFor time.Duration) certgen.Files {
	t.Helper()
	f, err := certgen.Write(t.TempDir(), []string{"127.0.0.1"}, validFor)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Reload takes a new pair, and keeps the old where the files no longer
// hold a valid one.
func TestReload(t *testing.T) {
	a, b := certs(t, time.Hour), certs(t, time.Hour)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	put := func(from certgen.Files, keyFrom certgen.Files) {
		t.Helper()
		for _, p := range [][2]string{{from.Cert, cert}, {keyFrom.Key, key}} {
			data, err := os.ReadFile(p[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p[1], data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(a, a)
	kp, err := LoadKeypair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	first := kp.Certificate()
	put(b, b)
	if err := kp.Reload(); err != nil || kp.Certificate() == first {
		t.Fatalf("reload of a new pair: %v", err)
	}
	second := kp.Certificate()
	put(a, b) // a's certificate, b's key
	if err := kp.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("a mismatched pair: %v", err)
	}
	if kp.Certificate() != second {
		t.Fatal("a failed reload replaced the pair")
	}
	if w := kp.Expiring(); !strings.Contains(w, "the certificate expires in 1h0m0s") {
		t.Errorf("a certificate of an hour: warning %q", w)
	}
	pool, err := LoadCA(b.CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Verify(pool, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("b's pair against b's authority: %v", err)
	}
	other, err := LoadCA(a.CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Verify(other, x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("b's pair verified against a's authority")
	}
	long := certs(t, 365*24*time.Hour)
	lkp, err := LoadKeypair(long.Cert, long.Key)
	if err != nil {
		t.Fatal(err)
	}
	if w := lkp.Expiring(); w != "" {
		t.Errorf("a certificate of a year: warning %q", w)
	}
}

// Files that are not what the flags want are refused, saying why.
func TestBadFiles(t *testing.T) {
	f := certs(t, time.Hour)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, fileBytesMax+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := LoadCA(f.Key); return err }(), "no PEM certificate in it"},
		{func() error { _, err := LoadCA(dir); return err }(), "is not a regular file"},
		{func() error { _, err := LoadCA(big); return err }(), "a certificate or key file is at most"},
		{func() error { _, err := LoadKeypair(f.Cert, "/no/such/key.pem"); return err }(), "no such file or directory"},
		{func() error { _, err := Client("", f.Cert, "", ""); return err }(), "needs both its certificate and its key"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%v; want %q", tc.err, tc.want)
		}
	}
}

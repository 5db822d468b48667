package certgen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ensure keeps what a directory holds, and stops, rather than write a new
// authority over the half of one that is left: the kept certificates and
// the nodes that trust the old authority would refuse each other.
func TestEnsureKeepsAnAuthorityMissingAFile(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatalf("a second Ensure on a whole directory: %v", err)
	}
	caKey := filepath.Join(dir, "ca-key.pem")
	if err := os.Rename(caKey, caKey+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, []string{"127.0.0.1"}, time.Hour); err == nil || !strings.Contains(err.Error(), "ca-key.pem") {
		t.Fatalf("Ensure with ca-key.pem gone: %v, want a refusal naming it", err)
	}
	if now, err := os.ReadFile(f.CA); err != nil || !bytes.Equal(now, caPEM) {
		t.Fatalf("ca.pem was rewritten (%v)", err)
	}
	if _, err := os.Stat(caKey); err == nil {
		t.Fatal("a new ca-key.pem was written")
	}
}

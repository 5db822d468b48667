package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
	"dkv/internal/servetest"
	"dkv/internal/tlsfiles"
	"dkv/realnet"
)

func runCerts(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out, &out)
	return code, out.String()
}

// The first run makes an authority and a certificate; a server with it
// serves a client that trusts the authority; a second run signs a client
// certificate with the same authority, which the server then accepts.
func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, out := runCerts(t, "--dir", dir); code != 0 || !strings.Contains(out, "made an authority") {
		t.Fatalf("first run: %d\n%s", code, out)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if code, out := runCerts(t, "--dir", dir, "--name", "client", "--client"); code != 0 || strings.Contains(out, "made an authority") {
		t.Fatalf("second run: %d\n%s", code, out)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(again, caPEM) {
		t.Fatal("the second run replaced the authority")
	}
	for _, f := range []string{"ca-key.pem", "node-key.pem", "client-key.pem"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, st.Mode(), err)
		}
	}

	kp, err := tlsfiles.LoadKeypair(filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsfiles.LoadCA(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Verify(pool, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(kp.Certificate().Leaf.NotAfter); left < 364*24*time.Hour || left > 366*24*time.Hour {
		t.Errorf("valid for %v more, want a year", left)
	}
	// The client's certificate cannot pose as a node: no server use, no
	// host.
	ckp, err := tlsfiles.LoadKeypair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ckp.Verify(pool, x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("a --client certificate serves as a server's")
	}
	if err := ckp.Certificate().Leaf.VerifyHostname("127.0.0.1"); err == nil {
		t.Error("a --client certificate names 127.0.0.1")
	}
	cfg := realnet.DefaultHostConfig()
	cfg.TLS = tlsfiles.Server(kp, pool) // client certificates required
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), cfg)
	tc, err := tlsfiles.Client(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(addr, client.WithTLS(tc))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
}

func TestCertsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	if code, out := runCerts(t, "--dir", dir); code != 0 {
		t.Fatalf("%d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir}, "node.pem exists; remove it"},
		{[]string{"--dir", dir, "--name", "ca"}, `--name "ca"`},
		{[]string{"--dir", dir, "--name", "../x"}, `--name "../x"`},
		{[]string{"--dir", dir, "--name", "x", "--hosts", " , "}, "--hosts names no host"},
		{[]string{"--dir", dir, "--name", "x", "--days", "0"}, "--days must be in"},
		{[]string{"--dir", dir, "--name", "x", "--days", "4000"}, "the authority ends at"},
		{[]string{"--dir", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"--dir", dir, "--name", "x", "--client", "--hosts", "a"}, "--client makes a certificate that names no host"},
	} {
		if code, out := runCerts(t, tc.args...); code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, out, tc.want)
		}
	}
}

// An authority with one of its two files missing is not replaced: with the
// key moved off the machine (as the doc advises), a run overwrote ca.pem
// with a new authority and signed a certificate that nothing trusting the
// old one accepts (found by review).
func TestCertsKeepsAnAuthorityMissingAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, out := runCerts(t, "--dir", dir); code != 0 {
		t.Fatalf("first run: %d\n%s", code, out)
	}
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	caPEM, err := os.ReadFile(caCert)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(caKey)
	if err != nil {
		t.Fatal(err)
	}
	offline := filepath.Join(t.TempDir(), "ca-key.pem")
	if err := os.Rename(caKey, offline); err != nil {
		t.Fatal(err)
	}
	code, out := runCerts(t, "--dir", dir, "--name", "node2")
	if code != 1 || !strings.Contains(out, "put the key back") || strings.Contains(out, "made ") {
		t.Errorf("a run without ca-key.pem: %d\n%s; want 1, put the key back, nothing made", code, out)
	}
	if again, _ := os.ReadFile(caCert); !bytes.Equal(again, caPEM) {
		t.Error("a run without ca-key.pem replaced ca.pem")
	}
	for _, f := range []string{caKey, filepath.Join(dir, "node2.pem"), filepath.Join(dir, "node2-key.pem")} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was made", f)
		}
	}
	// The other way round: the certificate gone, the key stays.
	if err := os.Rename(offline, caKey); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(caCert); err != nil {
		t.Fatal(err)
	}
	code, out = runCerts(t, "--dir", dir, "--name", "node2")
	if code != 1 || !strings.Contains(out, "the authority's certificate") || strings.Contains(out, "made ") {
		t.Errorf("a run without ca.pem: %d\n%s; want 1, the authority's certificate, nothing made", code, out)
	}
	if again, _ := os.ReadFile(caKey); !bytes.Equal(again, keyPEM) {
		t.Error("a run without ca.pem replaced ca-key.pem")
	}
	// Both back: the run signs with the old authority.
	if err := os.WriteFile(caCert, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := runCerts(t, "--dir", dir, "--name", "node2"); code != 0 || strings.Contains(out, "made an authority") {
		t.Fatalf("a run with both back: %d\n%s", code, out)
	}
	kp, err := tlsfiles.LoadKeypair(filepath.Join(dir, "node2.pem"), filepath.Join(dir, "node2-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsfiles.LoadCA(caCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Verify(pool, x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("node2 against the old authority: %v", err)
	}
}

// A host that is neither an IP address nor a DNS name is refused before
// anything is made: "127.0.0.1:9000" (a port where the project's flags
// take host:port) made a certificate naming the DNS name "127.0.0.1:9000",
// which no client's check matches (found by review).
func TestCertsRefusesHostsThatAreNotHosts(t *testing.T) {
	for _, tc := range []struct{ hosts, want string }{
		{"127.0.0.1:9000", "give the host without its port (127.0.0.1, not :9000)"},
		{"db1.example.com:7001", "give the host without its port"},
		{"[::1]:7001", "give the host without its port"},
		{"https://db1.example.com", "neither an IP address nor a DNS name"},
		{"db 1", "neither an IP address nor a DNS name"},
		{"db_1.example.com", "neither an IP address nor a DNS name"},
		{"-db1", "neither an IP address nor a DNS name"},
		{"a..b", "neither an IP address nor a DNS name"},
	} {
		dir := filepath.Join(t.TempDir(), "certs")
		code, out := runCerts(t, "--dir", dir, "--hosts", "localhost,"+tc.hosts)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("--hosts localhost,%s: %d %q; want 2 and %q", tc.hosts, code, out, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("--hosts localhost,%s made %s", tc.hosts, dir)
		}
	}
	dir := filepath.Join(t.TempDir(), "certs")
	if code, out := runCerts(t, "--dir", dir, "--hosts", "127.0.0.1,::1,localhost,db-1.example.com,*.db.example.com,node1."); code != 0 {
		t.Fatalf("good hosts: %d\n%s", code, out)
	}
}

// A --name whose files are the authority's is refused: "ca-key" wrote its
// certificate over ca-key.pem, and the authority's key was lost (found by
// review).
func TestCertsRefusesTheAuthoritysNames(t *testing.T) {
	for _, name := range []string{"ca", "ca-key"} {
		dir := filepath.Join(t.TempDir(), "certs")
		if code, out := runCerts(t, "--dir", dir, "--name", name); code != 2 || !strings.Contains(out, "the authority's files") {
			t.Errorf("--name %s: %d %q; want 2, the authority's files", name, code, out)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("--name %s made %s", name, dir)
		}
	}
}

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

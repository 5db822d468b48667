package main

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/certgen"
	"dkv/internal/servetest"
	"dkv/internal/tlsfiles"
	"dkv/realnet"
)

// --tls-ca connects over TLS trusting the file's authority, with a client
// certificate where --tls-cert gives one; without TLS, or trusting another
// authority, the command fails with the reason.
func TestTLSFlags(t *testing.T) {
	f, err := certgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tlsfiles.LoadKeypair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsfiles.LoadCA(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	hc := realnet.DefaultHostConfig()
	hc.TLS = tlsfiles.Server(kp, pool) // a client certificate required
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), hc)

	withCert := []string{"--addr", addr, "--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key}
	if code, out, errOut := kv(t, append(withCert, "set", "k", "v")...); code != 0 {
		t.Fatalf("set over TLS: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := kv(t, append(withCert, "get", "k")...); code != 0 || out != "v\n" {
		t.Errorf("get over TLS: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no TLS", []string{"--addr", addr, "get", "k"}, 1, "tls_required"},
		{"another authority", []string{"--addr", addr, "--tls-ca", other.CA, "get", "k"}, 1, "certificate signed by unknown authority"},
		{"no client certificate", []string{"--addr", addr, "--tls-ca", f.CA, "get", "k"}, 1, "certificate required"},
		{"another name", []string{"--addr", addr, "--tls-ca", f.CA, "--tls-server-name", "db.example.com", "get", "k"}, 1, "wanted to match db.example.com"},
		{"a key without its certificate", []string{"--addr", addr, "--tls-key", f.Key, "get", "k"}, 2, "needs both its certificate and its key"},
		{"a missing CA file", []string{"--addr", addr, "--tls-ca", "/no/such/ca.pem", "get", "k"}, 2, "open /no/such/ca.pem"},
	} {
		if code, _, errOut := kv(t, tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, %q; want %d and %q", tc.name, code, errOut, tc.code, tc.want)
		}
	}
}

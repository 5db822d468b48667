package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// --auth-file sends the password the file holds; without it the server's
// refusal is reported, exit 1.
func TestAuthFile(t *testing.T) {
	const secret = "0123456789abcdef-kv"
	hc := realnet.DefaultHostConfig()
	hc.AuthSecret = secret
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), hc)
	pass := filepath.Join(t.TempDir(), "dkv.pass")
	if err := os.WriteFile(pass, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kv(t, "--addr", addr, "--auth-file", pass, "set", "k", "v"); code != 0 {
		t.Fatalf("set with the password: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := kv(t, "--addr", addr, "--auth-file", pass, "get", "k"); code != 0 || out != "v\n" {
		t.Errorf("get with the password: exit %d, %q", code, out)
	}
	if code, _, errOut := kv(t, "--addr", addr, "get", "k"); code != 1 || !strings.Contains(errOut, "auth_required") || !strings.Contains(errOut, "--auth-file FILE") {
		t.Errorf("get without the password: exit %d, %q", code, errOut)
	}
	// A wrong password is the server's refusal of the file's, not a hint
	// to give one (found by review).
	wrong := filepath.Join(t.TempDir(), "wrong.pass")
	if err := os.WriteFile(wrong, []byte("not-the-password-at-all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := kv(t, "--addr", addr, "--auth-file", wrong, "get", "k"); code != 1 || !strings.Contains(errOut, "wrong password") || !strings.Contains(errOut, "the password sent is the one in --auth-file "+wrong) || strings.Contains(errOut, "give the server's password") {
		t.Errorf("get with a wrong password: exit %d, %q", code, errOut)
	}
	if code, _, errOut := kv(t, "--addr", addr, "--auth-file", "/no/such/file", "get", "k"); code != 2 || !strings.Contains(errOut, "--auth-file: open /no/such/file") {
		t.Errorf("a missing password file: exit %d, %q", code, errOut)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/client"
)

// writeAuthFile writes a password file of mode perm.
func writeAuthFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dkv.pass")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// A real server with --auth-file: the Go client, cmd/kv and redis-cli with
// the password are served; without it, or with a wrong one, they are
// refused, and nothing they sent was run.
func TestAuthFileOnARealServer(t *testing.T) {
	const secret = "0123456789abcdef-real-server"
	pass := writeAuthFile(t, secret+"\n", 0o600)
	s := start(t, t.TempDir(), "--auth-file", pass)
	if strings.Contains(s.log(), "can be read by other users") {
		t.Errorf("a 0600 file was warned about:\n%s", s.log())
	}
	ctx := context.Background()

	c, err := client.Dial(s.addr, client.WithPassword(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// A wrong password fails the dial; none fails the first call, since
	// the client cannot know that the server wants one.
	if _, err := client.Dial(s.addr, client.WithPassword("not the password at all")); !errors.Is(err, client.ErrAuth) {
		t.Errorf("dial with a wrong password: %v, want ErrAuth", err)
	}
	none, err := client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if err := none.Set(ctx, "k", "stranger"); !errors.Is(err, client.ErrAuth) {
		t.Errorf("set without a password: %v, want ErrAuth", err)
	}
	resps := roundTrip(t, s.addr, `{"op":"set","key":"k","value":"stranger"}`, `{"op":"get","key":"k"}`)
	if code(resps[0]) != "auth_required" || code(resps[1]) != "auth_required" {
		t.Errorf("requests without the password: %+v %+v", resps[0].Error, resps[1].Error)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "v" {
		t.Errorf("get after a stranger's set: %q, %v", v, err)
	}

	// redis-cli -a, as with Redis.
	if cli, err := exec.LookPath("redis-cli"); err == nil {
		p := port(t, s.addr)
		if out := tool(t, 30*time.Second, cli, "-p", p, "--no-auth-warning", "-a", secret, "get", "k"); out != "v\n" {
			t.Errorf("redis-cli -a get: %q", out)
		}
		if out := tool(t, 30*time.Second, cli, "-p", p, "get", "k"); !strings.Contains(out, "NOAUTH Authentication required.") {
			t.Errorf("redis-cli get without the password: %q", out)
		}
	} else {
		t.Log("redis-cli is not installed (Debian's redis-tools); its part is skipped")
	}
}

// A password file others can read is served, with a warning.
func TestAuthFileReadableByOthersIsWarnedAbout(t *testing.T) {
	pass := writeAuthFile(t, "0123456789abcdef", 0o644)
	s := start(t, t.TempDir(), "--auth-file", pass)
	if !strings.Contains(s.log(), "can be read by other users (mode 0644): chmod 600 it") {
		t.Errorf("no warning for a 0644 password file:\n%s", s.log())
	}
}

// A bad password file is a usage error that touches nothing.
func TestAuthFileUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    string
	}{
		{"short\n", "the password is 5 bytes; it must be at least 16"},
		{strings.Repeat("p", 513), "the password is over 512 bytes"},
		{"0123456789abcdef\tand a tab", "the password holds a control character"},
		{"two lines of a password\nsecond\n", "the password holds a control character"},
		{"0123456789abcdef\xff", "the password is not UTF-8 text"},
	} {
		pass := writeAuthFile(t, tc.content, 0o600)
		dir := filepath.Join(t.TempDir(), "data")
		var stderr bytes.Buffer
		c := run([]string{"--data-dir", dir, "--auth-file", pass}, &stderr)
		if c != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.content, c, stderr.String(), tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%q: created the data directory before refusing", tc.content)
		}
	}
	var stderr bytes.Buffer
	if c := run([]string{"--data-dir", t.TempDir(), "--auth-file", "/no/such/file"}, &stderr); c != exitUsage || !strings.Contains(stderr.String(), "--auth-file: open /no/such/file: no such file or directory") {
		t.Errorf("a missing file: exit %d, %q", c, stderr.String())
	}
}

// Requests refused for the password are counted, by code, with the host's
// other refusals: an operator sees guessing in the metrics.
func TestAuthRefusalsAreCounted(t *testing.T) {
	pass := writeAuthFile(t, "0123456789abcdef-metrics\n", 0o600)
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--auth-file", pass, "--metrics-addr", maddr)
	before := getScrape(t, maddr)
	resps := roundTrip(t, s.addr, `{"op":"get","key":"k"}`, `{"op":"auth","password":"wrong"}`,
		`{"op":"auth","password":"0123456789abcdef-metrics"}`, `{"op":"get","key":"k"}`)
	if code(resps[0]) != "auth_required" || code(resps[1]) != "auth_failed" || !resps[2].OK || code(resps[3]) != "not_found" {
		t.Fatalf("responses: %+v", resps)
	}
	wantGrowth(t, maddr, before, map[string]float64{
		`dkv_requests_total{op="invalid",code="auth_required"}`: 1,
		`dkv_requests_total{op="invalid",code="auth_failed"}`:   1,
		`dkv_requests_total{op="get",code="not_found"}`:         1,
	})
}

// SIGHUP rereads --auth-file: new connections need the new password, one
// that proved the old keeps going, and a file that is no longer valid
// leaves the password as it was, saying why.
func TestAuthFileReloadsOnSIGHUP(t *testing.T) {
	const oldSecret, newSecret = "0123456789abcdef-the-old-one", "0123456789abcdef-the-new-one"
	pass := writeAuthFile(t, oldSecret+"\n", 0o600)
	s := start(t, t.TempDir(), "--auth-file", pass)
	ctx := context.Background()
	before, err := client.Dial(s.addr, client.WithPassword(oldSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	if err := os.WriteFile(pass, []byte(newSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGHUP)
	waitLog(t, s, "SIGHUP: reloaded the password")
	if _, err := client.Dial(s.addr, client.WithPassword(oldSecret)); !errors.Is(err, client.ErrAuth) {
		t.Errorf("a new connection with the old password: %v, want ErrAuth", err)
	}
	after, err := client.Dial(s.addr, client.WithPassword(newSecret))
	if err != nil {
		t.Fatalf("a new connection with the new password: %v", err)
	}
	defer after.Close()
	if err := before.Set(ctx, "k", "v"); err != nil {
		t.Errorf("the connection that proved the old password: %v", err)
	}

	// A file that is no longer a valid password changes nothing.
	if err := os.WriteFile(pass, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGHUP)
	waitLog(t, s, "SIGHUP: the password was not reloaded, the old one stays")
	again, err := client.Dial(s.addr, client.WithPassword(newSecret))
	if err != nil {
		t.Fatalf("the password after a bad reload: %v", err)
	}
	again.Close()
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}
}

// waitLog waits until the server's log holds substr.
func waitLog(t *testing.T, s *server, substr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.log(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", substr, s.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

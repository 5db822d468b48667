package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/certgen"
	"dkv/internal/tlsfiles"
)

func writeCerts(t *testing.T, hosts ...string) certgen.Files {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	f, err := certgen.Write(t.TempDir(), hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func tlsClient(t *testing.T, ca string) client.Option {
	t.Helper()
	cfg, err := tlsfiles.Client(ca, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return client.WithTLS(cfg)
}

// A real server with --tls-cert serves TLS clients, tells a plain one
// what the port wants, and keeps its data across a SIGKILL as ever.
func TestTLSOnARealServer(t *testing.T) {
	f := writeCerts(t)
	dir := t.TempDir()
	s := start(t, dir, "--tls-cert", f.Cert, "--tls-key", f.Key)
	if !strings.Contains(s.log(), "the client port speaks TLS only (--tls-cert "+f.Cert+")") {
		t.Errorf("the log does not say the port speaks TLS:\n%s", s.log())
	}
	ctx := context.Background()
	c, err := client.Dial(s.addr, tlsClient(t, f.CA))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "k", "over TLS"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	resps := roundTrip(t, s.addr, `{"op":"get","key":"k"}`)
	if code(resps[0]) != "tls_required" {
		t.Errorf("a plain request: %+v", resps[0])
	}
	s.signal(syscall.SIGKILL)
	s.exitCode()
	s = start(t, dir, "--tls-cert", f.Cert, "--tls-key", f.Key)
	c, err = client.Dial(s.addr, tlsClient(t, f.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Get(ctx, "k"); err != nil || v != "over TLS" {
		t.Fatalf("get after SIGKILL and restart: %q, %v", v, err)
	}
}

// A plain-text client of the TLS port and a failed handshake are each
// counted, so that an operator sees misconfigured clients in the metrics,
// and the certificate's end is there to alert on.
func TestTLSRefusalsAreCounted(t *testing.T) {
	f := writeCerts(t)
	other := writeCerts(t)
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--tls-cert", f.Cert, "--tls-key", f.Key, "--metrics-addr", maddr)
	before := getScrape(t, maddr)
	// Every family of dkv's says what it is: the TLS families had empty
	// HELP lines (found by review).
	page, _ := httpGet(t, "http://"+maddr+"/metrics")
	for _, line := range readLines(page) {
		if name, ok := strings.CutPrefix(line, "# HELP dkv_"); ok && !strings.Contains(name, " ") {
			t.Errorf("an empty HELP line: %q", line)
		}
	}
	if resps := roundTrip(t, s.addr, `{"op":"ping"}`); code(resps[0]) != "tls_required" {
		t.Fatalf("a plain request: %+v", resps[0])
	}
	if _, err := client.Dial(s.addr, tlsClient(t, other.CA)); !errors.Is(err, client.ErrTLS) {
		t.Fatalf("a client of another authority: %v", err)
	}
	kp, err := tlsfiles.LoadKeypair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := before[`dkv_tls_certificate_expiry_timestamp_seconds{port="client"}`], float64(kp.Certificate().Leaf.NotAfter.Unix()); got != want {
		t.Errorf("the certificate's expiry: %v, want %v", got, want)
	}
	want := map[string]float64{
		`dkv_requests_total{op="invalid",code="tls_required"}`: 1,
		`dkv_tls_handshake_failures_total`:                     1,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := getScrape(t, maddr)
		missing := ""
		for key, n := range want {
			if got := after[key] - before[key]; got != n {
				missing += fmt.Sprintf("%s went up by %v, want %v; ", key, got, n)
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGHUP rereads the certificate: new connections get the new one, open
// ones keep going, and a pair that is no longer valid leaves the old.
func TestTLSReloadsOnSIGHUP(t *testing.T) {
	old := writeCerts(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	copyFile(t, old.Cert, cert)
	copyFile(t, old.Key, key)
	s := start(t, t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	ctx := context.Background()
	before, err := client.Dial(s.addr, tlsClient(t, old.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	renewed := writeCerts(t) // another authority, so the change shows
	copyFile(t, renewed.Cert, cert)
	copyFile(t, renewed.Key, key)
	s.signal(syscall.SIGHUP)
	waitLog(t, s, "SIGHUP: reloaded --tls-cert")
	if _, err := client.Dial(s.addr, tlsClient(t, old.CA)); !errors.Is(err, client.ErrTLS) {
		t.Errorf("a new connection that trusts the old authority: %v, want ErrTLS", err)
	}
	after, err := client.Dial(s.addr, tlsClient(t, renewed.CA))
	if err != nil {
		t.Fatalf("a new connection that trusts the new authority: %v", err)
	}
	defer after.Close()
	if err := before.Set(ctx, "k", "v"); err != nil {
		t.Errorf("the connection opened before the reload: %v", err)
	}

	// A key that is not the certificate's changes nothing.
	copyFile(t, old.Key, key)
	s.signal(syscall.SIGHUP)
	waitLog(t, s, "SIGHUP: --tls-cert was not reloaded, the old certificate stays")
	again, err := client.Dial(s.addr, tlsClient(t, renewed.CA))
	if err != nil {
		t.Fatalf("after a bad reload: %v", err)
	}
	again.Close()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Bad TLS flags are usage errors that touch nothing, each saying what is
// wrong.
func TestTLSUsageErrors(t *testing.T) {
	f := writeCerts(t)
	other := writeCerts(t)
	ca, err := certgen.NewCA("expired", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiredCert, expiredKey := filepath.Join(t.TempDir(), "c.pem"), filepath.Join(t.TempDir(), "k.pem")
	cp, kp, err := ca.Issue("old", []string{"127.0.0.1"}, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteKeypair(expiredCert, expiredKey, cp, kp); err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey := filepath.Join(t.TempDir(), "c.pem"), filepath.Join(t.TempDir(), "k.pem")
	cp, kp, err = ca.IssueClient("app1", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteKeypair(clientCert, clientKey, cp, kp); err != nil {
		t.Fatal(err)
	}
	cluster := []string{"--node-id", "0", "--kv-port", "17010", "--other-kv-ports", "17011,17012", "--repl-port", "17001", "--secondary-repl-ports", "17002,17003"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		// A client certificate served on the client port: every
		// client's handshake failed (found by review).
		{[]string{"--tls-cert", clientCert, "--tls-key", clientKey}, "is not for server use"},
		{[]string{"--tls-cert", f.Cert}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-key", f.Key}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-client-ca", f.CA}, "--tls-client-ca asks for client certificates over TLS"},
		{[]string{"--tls-cert", f.Cert, "--tls-key", other.Key}, "private key does not match public key"},
		{[]string{"--tls-cert", expiredCert, "--tls-key", expiredKey}, "the certificate expired at"},
		{[]string{"--tls-cert", "/no/such/cert.pem", "--tls-key", f.Key}, "open /no/such/cert.pem: no such file or directory"},
		{[]string{"--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-client-ca", f.Key}, "--tls-client-ca: " + f.Key + ": no PEM certificate in it"},
		{[]string{"--peer-tls-cert", f.Cert, "--peer-tls-key", f.Key}, "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together"},
		{[]string{"--peer-tls-cert", f.Cert, "--peer-tls-key", f.Key, "--peer-tls-ca", f.CA}, "a single node has none"},
		{append([]string{"--peer-tls-cert", f.Cert, "--peer-tls-key", f.Key, "--peer-tls-ca", other.CA}, cluster...),
			"not one the other nodes would accept (signed by --peer-tls-ca"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		var stderr bytes.Buffer
		c := run(append([]string{"--data-dir", dir}, tc.args...), &stderr)
		if c != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, c, stderr.String(), tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%q: created the data directory before refusing", tc.args)
		}
	}
}

// A peer certificate that does not name the node's replication host is
// refused as the node starts: its peers would refuse it both ways. One
// that does is served, its hour of validity warned about.
func TestPeerCertificateMustNameTheReplicationHost(t *testing.T) {
	cluster := []string{"--node-id", "0", "--kv-port", "17010", "--other-kv-ports", "17011,17012", "--repl-port", "17001", "--secondary-repl-ports", "17002,17003"}
	f := writeCerts(t, "localhost")
	var stderr bytes.Buffer
	_, err := parseFlags(append([]string{"--peer-tls-cert", f.Cert, "--peer-tls-key", f.Key, "--peer-tls-ca", f.CA}, cluster...), &stderr)
	if err == nil || !strings.Contains(err.Error(), "does not name 127.0.0.1, this node's replication host") {
		t.Fatalf("a certificate for localhost alone: %v", err)
	}
	g := writeCerts(t)
	o, err := parseFlags(append([]string{"--peer-tls-cert", g.Cert, "--peer-tls-key", g.Key, "--peer-tls-ca", g.CA}, cluster...), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(o.tls.warnings, "\n"); !strings.Contains(w, "the certificate expires in 1h0m0s") {
		t.Fatalf("warnings: %q", o.tls.warnings)
	}
}

// A node on every address (--host 0.0.0.0 or ::, with the cluster's or
// mesh's id given) is dialled at whatever its peers' lists say, so its
// certificate is not held to name 0.0.0.0: it was, and a good certificate
// was refused with a hint to make one for 0.0.0.0, which no peer accepts
// (found by review).
func TestPeerCertificateOfANodeOnEveryAddress(t *testing.T) {
	g := writeCerts(t)
	for _, tc := range []struct{ host, kv, repl, others, peers string }{
		{"0.0.0.0", "17010", "17001", "127.0.0.1:17011,127.0.0.1:17012", "127.0.0.1:17002,127.0.0.1:17003"},
		{"::", "17010", "17001", "[::1]:17011,[::1]:17012", "[::1]:17002,[::1]:17003"},
	} {
		var stderr bytes.Buffer
		_, err := parseFlags([]string{"--host", tc.host, "--cluster-id", "0123456789abcdef", "--node-id", "0",
			"--kv-port", tc.kv, "--other-kv-ports", tc.others, "--repl-port", tc.repl, "--secondary-repl-ports", tc.peers,
			"--peer-tls-cert", g.Cert, "--peer-tls-key", g.Key, "--peer-tls-ca", g.CA}, &stderr)
		if err != nil {
			t.Errorf("--host %s with a certificate for 127.0.0.1 and localhost: %v", tc.host, err)
		}
	}
}

// SIGHUP's reload holds a peer certificate to what the start did: one that
// does not name the node's replication host is refused, and the old one
// stays served.
func TestPeerCertificateReloadKeepsTheStartsChecks(t *testing.T) {
	good := writeCerts(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "peer.pem"), filepath.Join(dir, "peer-key.pem")
	copyFile(t, good.Cert, cert)
	copyFile(t, good.Key, key)
	st, err := tlsFlags{peerCertFile: cert, peerKeyFile: key, peerCAFile: good.CA}.resolve("cluster", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	served := st.peer.Certificate()

	// The same authority, but for another host.
	ca, err := certgen.ReadCA(good.CA, filepath.Join(filepath.Dir(good.CA), "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("elsewhere", []string{"10.9.9.9"}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteKeypair(cert, key, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st.reload(newServerLog(&out, logText, slog.LevelInfo))
	if st.peer.Certificate() != served || !strings.Contains(out.String(), "SIGHUP: --peer-tls-cert was not reloaded, the old certificate stays") ||
		!strings.Contains(out.String(), "does not name 127.0.0.1") {
		t.Fatalf("a reload of a certificate for another host: %s", out.String())
	}
}

// The authorities' files are read at start only: SIGHUP says so when one
// has changed, rather than log the certificate's reload alone and leave
// the operator believing that the new authorities took (found by review).
func TestSIGHUPWarnsOfAChangedAuthority(t *testing.T) {
	f := writeCerts(t)
	other := writeCerts(t)
	ca := filepath.Join(t.TempDir(), "clients.pem")
	copyFile(t, f.CA, ca)
	s := start(t, t.TempDir(), "--tls-cert", f.Cert, "--tls-key", f.Key, "--tls-client-ca", ca)
	const reloaded, changed = "SIGHUP: reloaded --tls-cert", "--tls-client-ca " // + path + " has changed"
	reloads := func(n int) {
		t.Helper()
		s.signal(syscall.SIGHUP)
		for deadline := time.Now().Add(30 * time.Second); strings.Count(s.log(), reloaded) < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no reload %d:\n%s", n, s.log())
			}
		}
	}
	reloads(1)
	if strings.Contains(s.log(), changed+ca+" has changed") {
		t.Fatalf("a warning of a change when nothing changed:\n%s", s.log())
	}
	copyFile(t, other.CA, ca)
	reloads(2)
	if !strings.Contains(s.log(), changed+ca+" has changed since the server started, but the authorities are read at start only") {
		t.Fatalf("no warning of the changed authority:\n%s", s.log())
	}
}

package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/certgen"
	"dkv/internal/servetest"
	"dkv/internal/tlsfiles"
	"dkv/realnet"
)

// serveTLS runs a single node whose client port speaks TLS with a new
// authority's certificate for the loopback addresses, requiring client
// certificates of that authority if clientCerts.
func serveTLS(t *testing.T, clientCerts bool) (string, certgen.Files) {
	t.Helper()
	return serveTLSOn(t, realnet.DefaultHostConfig(), clientCerts)
}

// serveTLSOn is serveTLS with a host config of the caller's.
func serveTLSOn(t *testing.T, cfg realnet.HostConfig, clientCerts bool) (string, certgen.Files) {
	t.Helper()
	f, err := certgen.Write(t.TempDir(), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tlsfiles.LoadKeypair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if clientCerts {
		pool, err := tlsfiles.LoadCA(f.CA)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tlsfiles.Server(kp, pool)
	} else {
		cfg.TLS = tlsfiles.Server(kp, nil)
	}
	return servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), cfg), f
}

func clientTLS(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	cfg, err := tlsfiles.Client(ca, cert, key, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTLS(t *testing.T) {
	addr, f := serveTLS(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialContext(ctx, addr, WithTLS(clientTLS(t, f.CA, "", "")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", "over TLS"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "over TLS" {
		t.Fatalf("get: %q, %v", v, err)
	}

	// A client that trusts another authority, or dials a name the
	// certificate lacks, fails at once, without its retries.
	other, err := certgen.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	named := clientTLS(t, f.CA, "", "")
	named.ServerName = "dkv.example.com"
	for name, cfg := range map[string]*tls.Config{"another authority": clientTLS(t, other.CA, "", ""), "another name": named} {
		start := time.Now()
		_, err := DialContext(ctx, addr, WithTLS(cfg), WithRetries(10))
		if !errors.Is(err, ErrTLS) {
			t.Errorf("%s: %v, want ErrTLS", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: failing took %v: it was retried", name, d)
		}
	}
	if _, err := DialCluster(ctx, []string{addr, addr}, WithTLS(clientTLS(t, other.CA, "", ""))); !errors.Is(err, ErrTLS) {
		t.Errorf("cluster client, another authority: %v, want ErrTLS", err)
	}

	// A client without TLS is told what the port wants.
	plain, err := DialContext(ctx, addr)
	if err == nil {
		err = plain.Set(ctx, "k", "plain")
		plain.Close()
	}
	if err == nil || !strings.Contains(err.Error(), core.CodeTLSRequired) {
		t.Errorf("a plain client of the TLS port: %v", err)
	}
	// With a password too: the refusal is TLS's, not the password's.
	_, err = DialContext(ctx, addr, WithPassword("secret"))
	if err == nil || !strings.Contains(err.Error(), core.CodeTLSRequired) || strings.Contains(err.Error(), "refused the password") {
		t.Errorf("a plain client of the TLS port, with a password: %v", err)
	}
}

// WithTLS against a server that does not speak TLS fails at once and says
// so.
func TestTLSToAPlainServer(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	_, f := serveTLS(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := DialContext(ctx, addr, WithTLS(clientTLS(t, f.CA, "", "")), WithRetries(10))
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("dial: %v", err)
	}
}

// A server that requires client certificates serves a client with one
// of its authority's and refuses one without.
func TestTLSClientCertificate(t *testing.T) {
	addr, f := serveTLS(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialContext(ctx, addr, WithTLS(clientTLS(t, f.CA, f.Cert, f.Key)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// TLS 1.3 tells the client of the refusal after its handshake: the
	// first request fails, with ErrTLS, as never applied (the server read
	// nothing); a cluster client tries its other nodes, then says the same.
	anon, err := DialContext(ctx, addr, WithTLS(clientTLS(t, f.CA, "", "")), WithRetries(0))
	if err == nil {
		err = anon.Set(ctx, "k", "anonymous")
		anon.Close()
	}
	if !errors.Is(err, ErrTLS) || errors.Is(err, ErrUnknownOutcome) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without a certificate: %v; want ErrTLS, not ErrUnknownOutcome", err)
	}
	cl, err := DialCluster(ctx, []string{addr}, WithTLS(clientTLS(t, f.CA, "", "")))
	if err == nil {
		err = cl.Set(ctx, "k", "anonymous")
		cl.Close()
	}
	if !errors.Is(err, ErrTLS) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("a cluster client without a certificate: %v; want ErrTLS, not ErrUnknownOutcome", err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "v" {
		t.Fatalf("the refused clients' writes applied: %q, %v", v, err)
	}
}

// A TLS conn that the server closed while it was idle is found closed
// before the next write goes on it, as a plain one is: the write is sent
// on a new conn, not reported of unknown outcome. A conn that only holds
// the server's session tickets is kept.
func TestTLSIdleCloseBeforeAWrite(t *testing.T) {
	cfg := realnet.DefaultHostConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	addr, f := serveTLSOn(t, cfg, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialContext(ctx, addr, WithTLS(clientTLS(t, f.CA, "", "")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A fresh conn holds the session tickets, unread.
	if err := c.Set(ctx, "k", "1"); err != nil {
		t.Fatalf("the first write: %v", err)
	}
	if err := c.Set(ctx, "k", "2"); err != nil {
		t.Fatalf("the second write: %v", err)
	}
	time.Sleep(time.Second) // past the server's idle timeout
	if err := c.Set(ctx, "k", "3"); err != nil {
		t.Fatalf("a write after the server closed the idle conn: %v", err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "3" {
		t.Fatalf("get: %q, %v", v, err)
	}
}

// A ClusterKVClient whose nodes all refuse its certificate ends the call
// once a node refuses it again, rather than making every attempt it may
// (found by review: 20 handshakes and backoffs, some 3 s, on every call of
// a client without the certificate the nodes ask for; with more attempts
// allowed, the call ran into its deadline).
func TestClusterStopsAtASecondTLSRefusal(t *testing.T) {
	addr, f := serveTLS(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The one node, under two names: each refuses, then one again.
	host, port, _ := net.SplitHostPort(addr)
	addrs := []string{addr, net.JoinHostPort("localhost", port)}
	if host != "127.0.0.1" {
		t.Fatalf("served on %s; want 127.0.0.1", addr)
	}
	cl, err := DialCluster(ctx, addrs, WithTLS(clientTLS(t, f.CA, "", "")), WithMaxAttempts(1000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = cl.Set(ctx, "k", "anonymous")
	if !errors.Is(err, ErrTLS) || errors.Is(err, ErrUnknownOutcome) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set without the certificate the nodes ask for: %v; want ErrTLS, neither unknown nor the deadline", err)
	}
	t.Log(err)
}

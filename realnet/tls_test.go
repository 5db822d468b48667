package realnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"dkv/core"
	"dkv/internal/certgen"
	"dkv/internal/tlsfiles"
)

// testCerts writes a new authority and a certificate for the loopback
// addresses into a temporary directory.
func testCerts(t *testing.T) certgen.Files {
	t.Helper()
	f, err := certgen.Write(t.TempDir(), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testKeypair(t *testing.T, f certgen.Files) *tlsfiles.Keypair {
	t.Helper()
	kp, err := tlsfiles.LoadKeypair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func testClientTLS(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg, err := tlsfiles.Client(caFile, certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// dialTLS opens a TLS connection to addr as a client that trusts cfg's
// authorities.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) *client {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// With TLS, the client port serves JSON and RESP over it, on either host
// (a TLS connection gets goroutines even where event loops serve the rest),
// and with a password too.
func TestTLSClientPort(t *testing.T) {
	f := testCerts(t)
	cfg := authConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		c := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
		c.send(`{"op":"get","key":"k"}` + "\n")
		c.recvCode(core.CodeAuthRequired)
		c.send(`{"op":"auth","password":"` + testSecret + `"}` + "\n" + `{"op":"set","key":"k","value":"over TLS"}` + "\n" +
			`{"op":"get","key":"k"}` + "\n")
		c.recvCode("")
		c.recvCode("")
		if resp := c.recvCode(""); resp.Value == nil || *resp.Value != "over TLS" {
			t.Fatalf("get: %+v", resp)
		}
		// A request whose line spans TLS records, and many pipelined.
		big := strings.Repeat("v", 100<<10)
		var batch strings.Builder
		batch.WriteString(`{"op":"set","key":"big","value":"` + big + `"}` + "\n")
		for range 500 {
			batch.WriteString(`{"op":"get","key":"k"}` + "\n")
		}
		c.send(batch.String())
		c.recvCode("")
		for range 500 {
			c.recvCode("")
		}

		rc := redis.NewClient(&redis.Options{Addr: r.addr, Password: testSecret, TLSConfig: testClientTLS(t, f.CA, "", ""),
			Protocol: 2, MaxRetries: -1, DialTimeout: 5 * time.Second})
		t.Cleanup(func() { rc.Close() })
		ctx := context.Background()
		if got, err := rc.Get(ctx, "k").Result(); err != nil || got != "over TLS" {
			t.Fatalf("go-redis GET over TLS: %q, %v", got, err)
		}
		if err := rc.Set(ctx, "r", "from RESP", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := rc.DBSize(ctx).Result(); err != nil || n != 3 {
			t.Fatalf("DBSIZE: %d, %v", n, err)
		}
	})
}

// A client that speaks plain text to the TLS port is told so, in its own
// protocol, and closed; the server goes on serving TLS clients.
func TestTLSPortRefusesPlainText(t *testing.T) {
	f := testCerts(t)
	cfg := respConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		c := dial(t, r.addr)
		c.send(`{"op":"get","key":"k"}` + "\n")
		if resp := c.recvCode(core.CodeTLSRequired); !strings.Contains(resp.Error.Message, "TLS") {
			t.Errorf("plain JSON: %+v", resp)
		}
		c.expectClosed()

		rc := dialRESP(t, r.addr)
		rc.send("*1\r\n$4\r\nPING\r\n")
		rc.expect("-ERR this port speaks TLS; connect with TLS (redis-cli --tls)\r\n")

		inline := dialRESP(t, r.addr)
		inline.send("PING\r\n")
		inline.expect("-ERR this port speaks TLS; connect with TLS (redis-cli --tls)\r\n")

		d := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
		d.send(`{"op":"ping"}` + "\n")
		d.recvCode("")
	})
}

// A client that does not trust the server's authority, or dials a name
// the certificate does not carry, fails its handshake; so does a client
// without a certificate where the server asks one, and one whose
// certificate another authority signed.
func TestTLSCertificatesAreChecked(t *testing.T) {
	f := testCerts(t)
	other := testCerts(t) // another authority
	cfg := respConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	r := startSingle(t, cfg)

	var unknown x509.UnknownAuthorityError
	_, err := tls.Dial("tcp", r.addr, testClientTLS(t, other.CA, "", ""))
	if !errors.As(err, &unknown) {
		t.Errorf("a client that trusts another authority: %v", err)
	}
	named, err := tlsfiles.Client(f.CA, "", "", "dkv.example.com")
	if err != nil {
		t.Fatal(err)
	}
	var hostname x509.HostnameError
	if _, err = tls.Dial("tcp", r.addr, named); !errors.As(err, &hostname) {
		t.Errorf("a name the certificate does not carry: %v", err)
	}

	pool, err := tlsfiles.LoadCA(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	mcfg := respConfig()
	mcfg.TLS = tlsfiles.Server(testKeypair(t, f), pool)
	m := startSingle(t, mcfg)
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", testClientTLS(t, f.CA, "", "")},
		{"another authority's", testClientTLS(t, f.CA, other.Cert, other.Key)},
	} {
		// TLS 1.3 reports the refusal of the client's certificate on the
		// client's first read.
		c := dialTLS(t, m.addr, tc.cfg)
		c.send(`{"op":"ping"}` + "\n")
		if line, err := c.line(); err == nil || !strings.Contains(err.Error(), "remote error: tls:") {
			t.Errorf("%s: %q, %v; want the server's TLS alert", tc.name, line, err)
		}
	}
	c := dialTLS(t, m.addr, testClientTLS(t, f.CA, f.Cert, f.Key))
	c.send(`{"op":"ping"}` + "\n")
	c.recvCode("")
}

// A connection that opens and then says nothing is closed after the
// handshake timeout at most, not the idle timeout.
func TestTLSHandshakeStallIsBounded(t *testing.T) {
	f := testCerts(t)
	cfg := respConfig()
	cfg.IdleTimeout = time.Hour
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	r := startSingle(t, cfg)
	c := dial(t, r.addr)
	c.nc.SetReadDeadline(time.Now().Add(tlsHandshakeTimeout + 5*time.Second))
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("the server sent something to a client that never said hello")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("still open after %v: %v", tlsHandshakeTimeout+5*time.Second, err)
	}
}

func withTLS(f certgen.Files, t *testing.T) func(*PeerConfig) {
	pool, err := tlsfiles.LoadCA(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tlsfiles.Peer(testKeypair(t, f), pool)
	return func(c *PeerConfig) { c.TLS = cfg }
}

// Peers over TLS deliver in every direction, large messages too, with
// the accepted connections read by goroutines or handed to a host that
// has event loops (which decline TLS connections).
func TestPeersOverTLS(t *testing.T) {
	f := testCerts(t)
	kinds := []bool{false}
	if EventLoopsSupported {
		kinds = append(kinds, true)
	}
	for _, onLoop := range kinds {
		t.Run(map[bool]string{false: "goroutines", true: "host with event loops"}[onLoop], func(t *testing.T) {
			peersOnLoop = onLoop
			t.Cleanup(func() { peersOnLoop = false })
			noPeerGoroutinesAtEnd(t)
			tps := startCluster(t, 3, withTLS(f, t))
			for k := range 60 {
				for _, from := range tps {
					for _, to := range tps {
						if from != to {
							from.Send(to.cfg.ID, payload(from.cfg.ID, to.cfg.ID, k))
						}
					}
				}
			}
			for _, to := range tps {
				waitFor(t, "120 messages", func() bool { return to.in.count() == 120 })
			}
		})
	}
}

// A node whose certificate another authority signed, or that speaks no
// TLS where the others do, is refused both ways, and the log says why.
func TestPeersOverTLSRefuseStrangers(t *testing.T) {
	f := testCerts(t)
	other := testCerts(t)
	for _, tc := range []struct {
		name  string
		tweak func(*PeerConfig)
		log0  string
	}{
		{"another authority", withTLS(other, t), "TLS handshake failed"},
		{"no TLS", func(*PeerConfig) {}, "TLS handshake failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noPeerGoroutinesAtEnd(t)
			mine := withTLS(f, t)
			tps := startCluster(t, 2, func(c *PeerConfig) {
				if c.ID == 1 {
					tc.tweak(c)
				} else {
					mine(c)
				}
			})
			a, b := tps[0], tps[1]
			a.Send(1, []byte("to B"))
			b.Send(0, []byte("to A"))
			a.Log(t, tc.log0)
			time.Sleep(50 * time.Millisecond)
			if a.in.count()+b.in.count() != 0 {
				t.Errorf("something was delivered: %v %v", a.in.all(), b.in.all())
			}
		})
	}
}

// A peer TLS config that does not check the dialer's certificate is
// refused: anyone could dial in.
func TestPeerTLSMustVerifyTheDialer(t *testing.T) {
	f := testCerts(t)
	cfg := DefaultPeerConfig()
	cfg.ID, cfg.ClusterID, cfg.Listen, cfg.Peers = 0, 1, "127.0.0.1:1", map[core.NodeID]string{1: "127.0.0.1:2"}
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	if _, err := NewPeers(cfg); err == nil || !strings.Contains(err.Error(), "RequireAndVerifyClientCert") {
		t.Fatalf("NewPeers: %v", err)
	}
	pool, err := tlsfiles.LoadCA(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	for name, tweak := range map[string]func(*tls.Config){
		"no RootCAs":         func(c *tls.Config) { c.RootCAs = nil },
		"no ClientCAs":       func(c *tls.Config) { c.ClientCAs = nil },
		"InsecureSkipVerify": func(c *tls.Config) { c.InsecureSkipVerify = true },
	} {
		cfg.TLS = tlsfiles.Peer(testKeypair(t, f), pool)
		tweak(cfg.TLS)
		if _, err := NewPeers(cfg); err == nil || !strings.Contains(err.Error(), "must name the cluster's authorities") {
			t.Errorf("%s: NewPeers: %v", name, err)
		}
	}
}

// At the connection limit a TLS client is refused as a plain one is, with
// the refusal inside TLS, so that it can read why.
func TestTLSConnectionLimit(t *testing.T) {
	f := testCerts(t)
	cfg := respConfig()
	cfg.ConnsMax = 1
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	r := startSingle(t, cfg)
	held := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
	held.send(`{"op":"ping"}` + "\n")
	held.recvCode("")
	over := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
	over.send(`{"op":"ping"}` + "\n")
	over.recvCode(core.CodeTooManyConns)
}

// A node that holds a certificate of the cluster's authority, but for
// another node's host, cannot pose as a node on a host its certificate
// does not name: node 1 (at 127.0.0.2) presents the certificate of node 0
// (127.0.0.1), and node 0 refuses what it dials in with.
func TestPeerCertificateMustNameTheSendersHost(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	ca, err := certgen.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	dir := t.TempDir()
	keypair := func(name string, host string) *tlsfiles.Keypair {
		certPEM, keyPEM, err := ca.Issue(name, []string{host}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if err := certgen.WriteKeypair(cert, key, certPEM, keyPEM); err != nil {
			t.Fatal(err)
		}
		kp, err := tlsfiles.LoadKeypair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	node0 := keypair("node0", "127.0.0.1")
	lns := []net.Listener{listenLoopback(t), nil}
	if lns[1], err = net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	addrs := []string{lns[0].Addr().String(), lns[1].Addr().String()}
	var tps []*testPeer
	for i := range 2 {
		cfg, l := testPeerConfig(t, core.NodeID(i), addrs)
		cfg.TLS = tlsfiles.Peer(node0, pool) // node 1 holds node 0's certificate
		tp := newTestPeer(t, cfg, l)
		tp.startOn(t, lns[i])
		tps = append(tps, tp)
	}
	a, b := tps[0], tps[1]
	b.Send(0, []byte("from an impostor"))
	a.Log(t, "the sender's TLS certificate does not name the host of the node it claims to be")
	time.Sleep(50 * time.Millisecond)
	if a.in.count() != 0 {
		t.Fatalf("delivered from the impostor: %v", a.in.all())
	}
}

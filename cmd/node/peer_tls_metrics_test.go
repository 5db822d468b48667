package main

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// A peer connection whose TLS handshake fails (here, plain text to the
// replication port of a node with --peer-tls-cert) is counted in
// dkv_peer_tls_handshake_failures_total, so that an operator sees a node
// its peers refuse in the metrics, not only in the log.
func TestPeerTLSHandshakeFailuresAreExported(t *testing.T) {
	f := writeCerts(t) // names 127.0.0.1
	const maddr, repl = "127.0.0.1:24020", "127.0.0.1:24101"
	// Nothing listens on the other nodes' ports: the node's dials are
	// refused before any handshake, and count nothing.
	s := launch(t, "--data-dir", t.TempDir(), "--metrics-addr", maddr,
		"--node-id", "0", "--kv-port", "24010", "--other-kv-ports", "24011,24012",
		"--repl-port", "24101", "--secondary-repl-ports", "24102,24103",
		"--peer-tls-cert", f.Cert, "--peer-tls-key", f.Key, "--peer-tls-ca", f.CA)
	const name = "dkv_peer_tls_handshake_failures_total"
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, status := tryHTTPGet("http://" + maddr + "/metrics"); status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics endpoint; log:\n%s", s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, ok := getScrape(t, maddr)[name]; !ok || n != 0 {
		t.Fatalf("%s before any handshake: %v (present: %v)", name, n, ok)
	}
	for {
		nc, err := net.Dial("tcp", repl)
		if err == nil {
			nc.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			buf := make([]byte, 512)
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			nc.Read(buf) // the TLS alert, or the close
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replication port does not answer: %v; log:\n%s", err, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for getScrape(t, maddr)[name] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after a plain-text connection to the replication port, want 1; log:\n%s", name, getScrape(t, maddr)[name], s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tryHTTPGet is httpGet that reports a failed request as status 0.
func tryHTTPGet(url string) (string, int) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", 0
	}
	resp.Body.Close()
	return "", resp.StatusCode
}

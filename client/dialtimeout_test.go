package client

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"dkv/internal/certgen"
	"dkv/internal/tlsfiles"
)

// WithDialTimeout bounds an attempt to open a connection whole: its TCP
// connect, TLS handshake and the password's answer share it. Each had a
// dial timeout of its own, so a server slow to handshake that then never
// answered the password held an attempt for up to three (found by the
// Python client's review, whose client had the same fault).
func TestDialTimeoutBoundsTheWholeAttempt(t *testing.T) {
	f, err := certgen.Write(t.TempDir(), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tlsfiles.LoadKeypair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	const dialTimeout = time.Second
	srv := newRawServer(t, func(i int, nc net.Conn) {
		// Most of the attempt's time goes before the handshake; then the
		// password is read and never answered.
		time.Sleep(dialTimeout * 6 / 10)
		tc := tls.Server(nc, tlsfiles.Server(kp, nil))
		if tc.Handshake() != nil {
			return
		}
		bufio.NewReader(tc).ReadBytes('\n')
		tc.Read(make([]byte, 1))
	})
	start := time.Now()
	c, err := Dial(srv.addr, WithTLS(clientTLS(t, f.CA, "", "")), WithPassword("sixteen-bytes-or-more"),
		WithDialTimeout(dialTimeout), WithRetries(0))
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded against a server that never took the password")
	}
	// The bound is one dial timeout; 1.6 of them is the handshake's wait
	// and a second timeout for the password, as before.
	if took > dialTimeout*3/2 {
		t.Errorf("one attempt took %v, past its dial timeout of %v: %v", took.Round(time.Millisecond), dialTimeout, err)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}

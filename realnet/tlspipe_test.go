package realnet

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"dkv/internal/tlsfiles"
)

// handshakeOverPipe accepts one TLS connection on a loopback port through
// a tlsPipe, runs both handshakes, and detaches the pipe: from then on the
// test plays the loop, reading the server's socket (raw) itself.
func handshakeOverPipe(t *testing.T) (p *tlsPipe, raw net.Conn, client *tls.Conn) {
	t.Helper()
	f := testCerts(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan *tls.Conn, 1)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), testClientTLS(t, f.CA, "", ""))
		if err != nil {
			t.Error(err)
		}
		dialed <- c
	}()
	raw, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	p = newTLSPipe(raw)
	p.tc = tls.Server(p, tlsfiles.Server(testKeypair(t, f), nil))
	if err := p.tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	client = <-dialed
	if client == nil {
		t.FailNow()
	}
	t.Cleanup(func() { client.Close() })
	p.detach()
	return p, raw, client
}

// TLS takes its records from the pipe in pieces of any size, a byte at a
// time too: a read that finds the pipe dry is a temporary error, which
// tls.Conn must not keep, and the partial record it holds is completed by
// the next feed. What the server writes goes to the pipe's out, not the
// socket, and reaches the client once sent.
func TestTLSPipeFeedsTLSInAnyPieces(t *testing.T) {
	p, raw, client := handshakeOverPipe(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	for i := range 200 {
		fmt.Fprintf(&want, "message %d %s\n", i, strings.Repeat("x", rng.IntN(3000)))
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		// Many writes, so many records.
		b := want.Bytes()
		for len(b) > 0 {
			n := min(len(b), 1+rng.IntN(5000))
			if _, err := client.Write(b[:n]); err != nil {
				t.Error(err)
				return
			}
			b = b[n:]
		}
	}()
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	out := make([]byte, 7000)
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	sizes := []int{1, 2, 5, 13, 100, 4096, len(buf)}
	for i := 0; got.Len() < want.Len(); i++ {
		n, err := raw.Read(buf[:sizes[i%len(sizes)]])
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", got.Len(), want.Len(), err)
		}
		p.feed(buf[:n])
		for {
			m, err := p.tc.Read(out)
			got.Write(out[:m])
			if err == errTLSDry {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", got.Len(), err)
			}
		}
		p.keep()
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("decrypted %d bytes, not the %d sent", got.Len(), want.Len())
	}

	// The server's side: TLS writes into the pipe, the loop sends.
	if _, err := p.tc.Write([]byte("reply\n")); err != nil {
		t.Fatal(err)
	}
	if p.outLen() == 0 {
		t.Fatal("TLS wrote nothing into the pipe")
	}
	if !p.send(func(b []byte) (int, bool) { n, err := raw.Write(b); return n, err == nil }) || p.outLen() != 0 {
		t.Fatal("the pipe's bytes were not sent")
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(client).ReadString('\n'); err != nil || line != "reply\n" {
		t.Fatalf("client read %q, %v", line, err)
	}

	// The socket's end reaches TLS after what came before it. The writer
	// must have returned first: tls.Conn.Close while a Write is in flight
	// closes the socket without the closing alert (it takes that for an
	// abort), which made this test fail about once in 150 runs.
	<-written
	client.Close() // its closing alert
	for {
		n, err := raw.Read(buf)
		p.feed(buf[:n])
		if _, rerr := p.tc.Read(out); rerr == io.EOF {
			break
		} else if rerr != errTLSDry {
			t.Fatalf("after the client's close: %v", rerr)
		}
		p.keep()
		if err != nil {
			t.Fatalf("the closing alert did not end the stream: %v", err)
		}
	}
}

// Where event loops serve, so do they a TLS connection, after its
// handshake on a goroutine of its own.
func TestTLSConnectionsAreServedByTheLoops(t *testing.T) {
	if !EventLoopsSupported {
		t.Skip("no event loops on this system")
	}
	f := testCerts(t)
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("event-loops=%d", loops), func(t *testing.T) {
			cfg := testConfig()
			cfg.EventLoops = loops
			cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
			r := startSingle(t, cfg)
			c := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
			c.send(`{"op":"ping"}` + "\n")
			c.recvCode("")
			if sc := r.serverConn(t, c); sc.lp == nil || sc.tls == nil {
				t.Fatalf("a TLS connection is served by goroutines (loop %v, pipe %v)", sc.lp != nil, sc.tls != nil)
			}
		})
	}
}

// Replies many times the sockets' buffers, to a client that sends all its
// requests before it reads, and more of them than a connection may have
// in flight: the loop pauses the connection, TLS's records wait in the
// pipe for the socket, and every reply arrives whole and in order.
func TestTLSPipelinedRepliesLargerThanTheSockets(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.RequestBytesMax = 1 << 20
	cfg.LineTimeout = 10 * time.Second  // the client reads nothing for a while,
	cfg.WriteTimeout = 20 * time.Second // then slowly under the race detector
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		c := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
		values := make([]string, 8)
		for i := range values {
			values[i] = fmt.Sprintf("%d:%s", i, strings.Repeat(string(rune('a'+i)), 60<<10))
			c.send(fmt.Sprintf(`{"op":"set","key":"k%d","value":"%s"}`+"\n", i, values[i]))
			c.recvCode("")
		}
		gets := 3 * cfg.ConnInflightMax
		go func() {
			var batch strings.Builder
			for i := range gets {
				fmt.Fprintf(&batch, `{"op":"get","key":"k%d"}`+"\n", i%len(values))
			}
			if _, err := io.WriteString(c.nc, batch.String()); err != nil {
				t.Error(err)
			}
		}()
		time.Sleep(200 * time.Millisecond) // let both sides' buffers fill
		c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		for i := range gets {
			if resp := c.recvCode(""); resp.Value == nil || *resp.Value != values[i%len(values)] {
				t.Fatalf("get %d: wrong value", i)
			}
		}
	})
}

// A server that stops does not wait for a TLS handshake that a client
// never begins: the handshake's goroutine is ended, not left to its 10 s.
func TestStopEndsATLSHandshake(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		nc, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		time.Sleep(50 * time.Millisecond) // accepted, its handshake waiting
		start := time.Now()
		r.host.Shutdown()
		if err := r.wait(t); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > tlsHandshakeTimeout/2 {
			t.Errorf("the stop waited %v for a silent TLS client", took)
		}
	})
}

// A record that does not decrypt ends its connection (TLS answers it with
// an alert); the server goes on serving the others.
func TestTLSBadRecordEndsTheConnection(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		raw, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		ccfg := testClientTLS(t, f.CA, "", "")
		ccfg.ServerName = "127.0.0.1"
		tc := tls.Client(raw, ccfg)
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		// An application-data record of garbage, under TLS's nose.
		bad := append([]byte{23, 3, 3, 0, 40}, bytes.Repeat([]byte{0x5a}, 40)...)
		if _, err := raw.Write(bad); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(tc); err == nil {
			t.Error("the connection ended without an alert")
		}
		c := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
		c.send(`{"op":"ping"}` + "\n")
		c.recvCode("")
	})
}

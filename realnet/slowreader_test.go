package realnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/core"
	"dkv/disk"
	"dkv/internal/tlsfiles"
)

// readSlowly reads n replies of at least valueBytes each at about 3 MB/s
// (64 KB, then 20 ms asleep), never stalling for longer.
func readSlowly(t *testing.T, c *client, n, valueBytes int) {
	t.Helper()
	br := bufio.NewReaderSize(c.nc, 64<<10)
	start := time.Now()
	for i := range n {
		var line []byte
		for {
			// Only a guard against a hang: far above any stall of a
			// loaded machine, which is not what is tested.
			c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if err == bufio.ErrBufferFull {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatalf("reply %d of %d after %v: %v (EOF: the server gave up on a client that was reading)", i, n, time.Since(start).Round(time.Millisecond), err)
			}
			break
		}
		if len(line) < valueBytes {
			t.Fatalf("reply %d: %.100s", i, line)
		}
	}
	t.Logf("%d replies in %v", n, time.Since(start).Round(time.Millisecond))
}

// A client that reads its replies steadily, but more slowly than the
// server makes them, is reading: PROTOCOL.md closes a connection only when
// the client has stopped reading for WriteTimeout, on every host. Here
// 8 MB of replies owed at once take the client about 3 s, WriteTimeout is
// 1 s, and the client never stalls for more than 20 ms; its receive buffer
// is held small, so that the kernel's buffers cannot hide a write that
// waits too long. The goroutine host (every TLS connection,
// --event-loops 0) once wrote what it owed in one write under one
// deadline: the replies an event loop's turn could not send at once, or
// one large reply, and closed the connection after 1 s.
func TestSlowButSteadyReaderIsNotClosed(t *testing.T) {
	const (
		valueBytes = 200_000
		n          = 40
	)
	value := strings.Repeat("x", valueBytes)
	run := func(t *testing.T, c *client) {
		if tc, ok := underlyingTCP(c.nc); ok {
			tc.SetReadBuffer(64 << 10)
		}
		c.send(fmt.Sprintf(`{"op":"set","key":"big","value":%q}`+"\n", value))
		c.recvCode("")
		// Many replies, owed at once.
		c.send(strings.Repeat(`{"op":"get","key":"big"}`+"\n", n))
		readSlowly(t, c, n, valueBytes)
		// One reply of 8 MB.
		c.send(`{"op":"bulk_get","keys":["big"` + strings.Repeat(`,"big"`, n-1) + `]}` + "\n")
		readSlowly(t, c, 1, n*valueBytes)
	}
	cfg := respConfig()
	cfg.WriteTimeout = time.Second
	// The client sends nothing while it reads, which takes longer than
	// respConfig's idle timeout under the race detector: once the server
	// has written its replies to the socket, nothing is owed, and an idle
	// connection is closed.
	cfg.IdleTimeout = time.Minute
	cfg.RequestBytesMax = 16 << 20 // bulk_get answers values up to it
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		t.Parallel() // the client mostly sleeps
		r := startSingleSmallSendBuffer(t, cfg)
		run(t, dial(t, r.addr))
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		f := testCerts(t)
		cfg := cfg
		cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
		r := startSingleSmallSendBuffer(t, cfg)
		run(t, dialTLS(t, r.addr, testClientTLS(t, f.CA, "", "")))
	})
}

// startSingleSmallSendBuffer is startSingle with its connections' send
// buffers held at 64 KiB (SO_SNDBUF, which accepted sockets take from the
// listener). A server's write into a full send buffer is woken only once
// the client has drained a third of it (Linux's tcp_poll): with the
// buffer grown to 4 MB, that is 1.3 MB, more than a slow client under the
// race detector reads in the test's 1 s WriteTimeout, on any host. The
// write timeout is to bound a client that takes nothing, not the kernel's
// buffering, so the test takes the buffer out of it.
func startSingleSmallSendBuffer(t *testing.T, cfg HostConfig) *running {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 64<<10)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return startHostOnListener(t, core.NewSingleNode(core.DefaultSingleConfig()), d, cfg, nil, ln)
}

// underlyingTCP is the TCP connection under nc, TLS or not.
func underlyingTCP(nc net.Conn) (*net.TCPConn, bool) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	tcp, ok := nc.(*net.TCPConn)
	return tcp, ok
}

package realnet

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"dkv/internal/tlsfiles"
)

// hostKinds are the ways of serving connections, for the tests that hold
// them to the same behaviour: a reader and a writer goroutine per
// connection, and where the system has them event loops, both one loop
// that waits in epoll_wait holding its processor and syncs inline (the
// default, with two processors or more) and two that park in the
// runtime's poller.
func hostKinds() []struct {
	name  string
	loops int
} {
	kinds := []struct {
		name  string
		loops int
	}{{"goroutines", 0}}
	if EventLoopsSupported {
		kinds = append(kinds, struct {
			name  string
			loops int
		}{"loops", 2}, struct {
			name  string
			loops int
		}{"waiting loop", 1})
	}
	return kinds
}

// forEachHost runs f once per host kind, with cfg's EventLoops set.
func forEachHost(t *testing.T, cfg HostConfig, f func(t *testing.T, cfg HostConfig)) {
	for _, k := range hostKinds() {
		t.Run(k.name, func(t *testing.T) {
			cfg := cfg
			cfg.EventLoops = k.loops
			f(t, cfg)
		})
	}
}

// The default host on Linux is the event loops, so every other test of the
// package runs against them; this holds that true.
func TestDefaultHostServesConnectionsFromEventLoops(t *testing.T) {
	if !EventLoopsSupported {
		t.Skip("no event loops on this system")
	}
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	c.send(`{"op":"ping"}` + "\n")
	c.recvCode("")
	if r.serverConn(t, c).lp == nil {
		t.Error("the default host serves a connection with goroutines, not an event loop")
	}
}

// A request that arrives a few bytes at a time, in many reads, is framed
// once whole, in JSON and in RESP.
func TestRequestsSplitAcrossManyReads(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		for _, tc := range []struct{ req, want string }{
			{`{"op":"set","key":"k","value":"v","id":1}` + "\n", `{"id":1,"ok":true}` + "\n"},
			{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n", "+OK\r\n"},
			{"GET k\r\n", "$2\r\nvv\r\n"},
		} {
			nc, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.(*net.TCPConn).SetNoDelay(true)
			for i := 0; i < len(tc.req); i += 3 {
				if _, err := io.WriteString(nc, tc.req[i:min(i+3, len(tc.req))]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(tc.want))
			if _, err := io.ReadFull(nc, got); err != nil || string(got) != tc.want {
				t.Errorf("%q in 3-byte pieces: got %q, %v; want %q", tc.req, got, err, tc.want)
			}
		}
	})
}

// Many more pipelined requests than the in-flight limit, sent before any
// reply is read: the connection pauses at the limit and resumes as replies
// leave, and every reply comes back in order.
func TestPipelinePastTheInflightLimit(t *testing.T) {
	cfg := respConfig()
	cfg.ConnInflightMax = 4
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		const n = 500
		for _, resp := range []bool{false, true} {
			nc, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			var b strings.Builder
			for i := range n {
				if resp {
					fmt.Fprintf(&b, "*2\r\n$4\r\nECHO\r\n$%d\r\n%d\r\n", len(fmt.Sprint(i)), i)
				} else {
					fmt.Fprintf(&b, `{"op":"ping","id":%d}`+"\n", i)
				}
			}
			go io.WriteString(nc, b.String())
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			for i := range n {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("reply %d: %v", i, err)
				}
				if resp {
					if line, err = br.ReadString('\n'); err != nil || line != fmt.Sprintf("%d\r\n", i) {
						t.Fatalf("RESP reply %d: %q, %v", i, line, err)
					}
				} else if !strings.Contains(line, fmt.Sprintf(`{"id":%d,`, i)) {
					t.Fatalf("JSON reply %d: %q", i, line)
				}
			}
		}
	})
}

// A client that pipelines requests for large values and reads nothing for
// a while fills its socket: the replies wait for it (EPOLLOUT, or the
// writer goroutine), and all arrive intact and in order once it reads.
func TestSlowReaderGetsEveryReplyInOrder(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		value := strings.Repeat("x", 200_000)
		c := dial(t, r.addr)
		c.send(fmt.Sprintf(`{"op":"set","key":"big","value":%q}`+"\n", value))
		c.recvCode("")
		const n = 40 // 8 MB of replies, past any socket buffer
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"op":"get","key":"big","id":%d}`+"\n", i)
		}
		c.send(b.String())
		time.Sleep(300 * time.Millisecond)
		c.br = bufio.NewReaderSize(c.nc, 1<<20)
		for i := range n {
			resp := c.recvCode("")
			if string(resp.ID) != fmt.Sprint(i) || resp.Value == nil || *resp.Value != value {
				t.Fatalf("reply %d: id %s, value intact %v", i, resp.ID, resp.Value != nil && *resp.Value == value)
			}
		}
	})
}

// A client that pipelines more requests than may be in flight and reads
// its replies slowly, for longer than the idle timeout, is not idle: the
// reader waits for room meanwhile, and that wait must not count against
// the client. A reader goroutine that reads through net.Conn (a TLS
// connection's) counted it from the read before the wait, and its next
// read, its deadline past, closed the connection with the rest of the
// requests unread.
func TestSlowReaderPastTheIdleTimeoutIsServed(t *testing.T) {
	f := testCerts(t)
	for _, overTLS := range []bool{false, true} {
		cfg := respConfig()
		cfg.ConnInflightMax = 4
		cfg.IdleTimeout = 300 * time.Millisecond
		if overTLS {
			cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
		}
		t.Run(map[bool]string{false: "plain", true: "TLS"}[overTLS], func(t *testing.T) {
			forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
				r := startSingle(t, cfg)
				var c *client
				if overTLS {
					c = dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
				} else {
					c = dial(t, r.addr)
				}
				value := strings.Repeat("x", 20_000)
				c.send(fmt.Sprintf(`{"op":"set","key":"big","value":%q}`+"\n", value))
				c.recvCode("")
				// 120 KB of requests, more than one read takes, for 60 MB
				// of replies, past any socket buffer: the reader waits for
				// room between two reads of them.
				const n = 3000
				var b strings.Builder
				for i := range n {
					fmt.Fprintf(&b, `{"op":"get","key":"big","id":%d}`+"\n", i)
				}
				go io.WriteString(c.nc, b.String())
				time.Sleep(3 * cfg.IdleTimeout)
				c.br = bufio.NewReaderSize(c.nc, 1<<20)
				c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
				for i := range n {
					resp := c.recvCode("")
					if string(resp.ID) != fmt.Sprint(i) || resp.Value == nil || *resp.Value != value {
						t.Fatalf("reply %d: id %s, value intact %v", i, resp.ID, resp.Value != nil && *resp.Value == value)
					}
				}
			})
		})
	}
}

// A client that never reads its replies is closed after WriteTimeout, and
// the host goes on serving others.
func TestClientThatNeverReadsIsClosedAfterTheWriteTimeout(t *testing.T) {
	cfg := respConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		value := strings.Repeat("x", 200_000)
		c := dial(t, r.addr)
		c.send(fmt.Sprintf(`{"op":"set","key":"big","value":%q}`+"\n", value))
		c.recvCode("")
		c.nc.(*net.TCPConn).SetReadBuffer(4096)
		c.send(strings.Repeat(`{"op":"get","key":"big"}`+"\n", 60))
		// Its connection is forgotten once the timeout passed.
		waitNoConns(t, r.host, "after the write timeout")
		other := dial(t, r.addr)
		other.send(`{"op":"ping"}` + "\n")
		other.recvCode("")
	})
}

// A connection over --max-conns gets its refusal in its own protocol: a
// RESP client Redis's own text, a JSON one (or one that sends nothing) the
// too_many_connections line.
func TestConnectionLimitRefusalSpeaksTheClientsProtocol(t *testing.T) {
	cfg := respConfig()
	cfg.ConnsMax = 1
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		held := dial(t, r.addr)
		held.send(`{"op":"ping"}` + "\n")
		held.recvCode("")
		for _, tc := range []struct{ first, want string }{
			{"*1\r\n$4\r\nPING\r\n", respTooManyClients},
			{"PING\r\n", respTooManyClients},
			{"set a b\r\n", respTooManyClients},
			{`{"op":"ping"}` + "\n", `"code":"too_many_connections"`},
			{"", `"code":"too_many_connections"`},
		} {
			nc, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			io.WriteString(nc, tc.first)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := bufio.NewReader(nc).ReadString('\n')
			if err != nil || !strings.Contains(got, tc.want) {
				t.Errorf("refused after %q: got %q, %v; want %q", tc.first, got, err, tc.want)
			}
		}
	})
}

func TestLooksRESP(t *testing.T) {
	for _, tc := range []struct {
		b    string
		want bool
	}{
		{"", false},
		{"*", true},
		{"PING", true},
		{"  get k\r\n", true},
		{"hello 3\r\n", true},
		{`{"op":"ping"}`, false},
		{"bogus\r\n", false},
		{strings.Repeat("a", rejectSniffBytes), false},
	} {
		if got := looksRESP([]byte(tc.b)); got != tc.want {
			t.Errorf("looksRESP(%q) = %v, want %v", tc.b, got, tc.want)
		}
	}
}

// Shutdown with connections in every state (idle, mid-line, mid-RESP
// command, pipelining, not reading, lingering) returns promptly, answers
// what was ready and closes them all.
func TestShutdownWithOpenConnectionsInEveryState(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		idle := dial(t, r.addr)
		midLine := dial(t, r.addr)
		midLine.send(`{"op":"se`)
		midRESP := dial(t, r.addr)
		midRESP.send("*3\r\n$3\r\nSET\r\n$1\r\n")
		answered := dial(t, r.addr)
		answered.send(`{"op":"set","key":"a","value":"1"}` + "\n")
		answered.recvCode("")
		flood := dial(t, r.addr)
		go func() {
			line := []byte(`{"op":"get","key":"a"}` + "\n")
			for {
				if _, err := flood.nc.Write(line); err != nil {
					return
				}
			}
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		r.host.Shutdown()
		if err := r.wait(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("shutdown took %v", took)
		}
		for _, c := range []*client{idle, midLine, midRESP, answered} {
			c.expectClosed()
		}
		flood.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, flood.nc); err != nil && !isReset(err) {
			t.Errorf("the flooding client: %v", err)
		}
	})
}

// A burst of connections that each send one request and close at once
// (the end of stream with the data) get their answers, and every one is
// forgotten.
func TestManyShortConnections(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		errs := make(chan error, 100)
		for i := range 100 {
			go func() {
				nc, err := net.Dial("tcp", r.addr)
				if err != nil {
					errs <- err
					return
				}
				defer nc.Close()
				fmt.Fprintf(nc, `{"op":"set","key":"k%d","value":"v"}`+"\n", i)
				nc.(*net.TCPConn).CloseWrite()
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, err := io.ReadAll(nc)
				if err == nil && string(b) != `{"ok":true}`+"\n" {
					err = fmt.Errorf("got %q", b)
				}
				errs <- err
			}()
		}
		for range 100 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		waitNoConns(t, r.host, "after every short connection closed")
	})
}

// waitNoConns waits up to 5 s for h to hold no connections, and fails the
// test, saying when they should have gone, if it still does.
func waitNoConns(t *testing.T, h *Host, when string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.mu.Lock()
		n := len(h.conns)
		h.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still registered 5s %s", n, when)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package realnet

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPeersOnAnEventLoop runs the tests of the receiving side again with
// the accepted connections read on a host's waiting event loop (ReadOn),
// and checks that the messages are delivered there.
// countWhereDelivered counts the messages in delivers on an event loop's
// goroutine, and off it.
func countWhereDelivered(in *inbox) (onLoop, off *atomic.Int32) {
	onLoop, off = new(atomic.Int32), new(atomic.Int32)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.onDeliver = func() {
		stack := make([]byte, 64<<10)
		stack = stack[:runtime.Stack(stack, false)]
		if strings.Contains(string(stack), "(*eloop).run") {
			onLoop.Add(1)
		} else {
			off.Add(1)
		}
	}
	return onLoop, off
}

// heldTLSReceiver starts two peers over TLS (with more of opt's config),
// has A send B one message, then holds B's loop, so that what A sends next
// fills the sockets, until release.
func heldTLSReceiver(t *testing.T, opt func(*PeerConfig)) (a, b *testPeer, release func()) {
	t.Helper()
	noPeerGoroutinesAtEnd(t)
	tlsCfg := withTLS(testCerts(t), t)
	tps := startCluster(t, 2, func(c *PeerConfig) {
		tlsCfg(c)
		if opt != nil {
			opt(c)
		}
	})
	a, b = tps[0], tps[1]
	waitFor(t, "A to connect to B", func() bool { return a.stats(1).Connected && b.stats(0).Inbound })
	a.Send(1, []byte("first"))
	waitFor(t, "the first message", func() bool { return b.in.count() == 1 })
	held := make(chan struct{})
	if !b.loop.post(func() { <-held }) {
		t.Fatal("post refused")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(release) // (before the peers stop) if the test ends first
	return a, b, release
}

func TestPeersOnAnEventLoop(t *testing.T) {
	waitingProcs(t)
	peersOnLoop = true
	t.Cleanup(func() { peersOnLoop = false })
	t.Run("delivered on the loop", func(t *testing.T) {
		noPeerGoroutinesAtEnd(t)
		tps := startCluster(t, 2, nil)
		in := tps[1].in
		onLoop, off := countWhereDelivered(in)
		for k := range 20 {
			tps[0].Send(1, payload(0, 1, k))
		}
		waitFor(t, "20 messages", func() bool { return in.count() == 20 })
		if onLoop.Load() != 20 || off.Load() != 0 {
			t.Fatalf("%d messages delivered on the loop, %d off it; want all 20 on it", onLoop.Load(), off.Load())
		}
	})
	t.Run("over TLS, delivered on the loop", func(t *testing.T) {
		// The loop reads the socket and TLS decrypts from the pipe
		// (tlspipe.go): every message arrives once, intact and in
		// order, the large ones too (payload's 300 KiB and 5 MiB).
		noPeerGoroutinesAtEnd(t)
		tps := startCluster(t, 2, withTLS(testCerts(t), t))
		in := tps[1].in
		onLoop, off := countWhereDelivered(in)
		const n = 120
		for k := range n {
			tps[0].Send(1, payload(0, 1, k))
		}
		waitFor(t, "the messages", func() bool { return in.count() == n })
		for k, d := range in.all() {
			if want := payload(0, 1, k); d.msg != string(want) {
				t.Fatalf("message %d: got %d bytes starting %q, want %d bytes", k, len(d.msg), d.msg[:min(len(d.msg), 12)], len(want))
			}
		}
		if onLoop.Load() != n || off.Load() != 0 {
			t.Fatalf("%d messages delivered on the loop, %d off it; want all %d on it", onLoop.Load(), off.Load(), n)
		}
	})
	t.Run("over TLS, sent inline past a full socket", func(t *testing.T) {
		// Send encrypts a message into the dialer's pipe and writes it
		// to the socket itself (sendTLSInline). The receiver's loop is
		// held meanwhile, so the socket fills: a frame's records are
		// left in the pipe for the sender, ahead of the queue behind
		// them, and every message arrives intact and in order.
		a, b, release := heldTLSReceiver(t, nil)
		const n = 300 // of 50 KiB: 15 MiB, past both sockets' buffers
		msg := func(k int) []byte {
			m := []byte(strings.Repeat(string(rune('a'+k%26)), 50<<10))
			copy(m, fmt.Sprintf("#%d|", k))
			return m
		}
		for k := range n {
			a.Send(1, msg(k))
		}
		release()
		waitFor(t, "every message", func() bool { return b.in.count() == n+1 })
		for k, d := range b.in.all()[1:] {
			if d.msg != string(msg(k)) {
				t.Fatalf("message %d: got %d bytes starting %q", k, len(d.msg), d.msg[:min(len(d.msg), 8)])
			}
		}
		if got := a.peers[1].sentInline.Load(); got == 0 {
			t.Error("no message was sent inline over TLS")
		}
	})
	t.Run("over TLS, a frame sent inline and lost is counted once", func(t *testing.T) {
		// The receiver's loop is held, so the socket fills: Send leaves
		// a frame's records in the pipe, and the sender's write of them
		// times out. That message is lost with the connection: it is
		// dropped, not also sent, and dropped once. Every message is
		// counted once, as sent or dropped.
		a, _, release := heldTLSReceiver(t, func(c *PeerConfig) {
			if c.ID == 0 {
				c.WriteTimeout = 300 * time.Millisecond
			}
		})
		const n = 300 // of 50 KiB: 15 MiB, past both sockets' buffers
		msg := []byte(strings.Repeat("m", 50<<10))
		for range n {
			a.Send(1, msg)
		}
		a.log.waitFor(t, "connection to peer 1")
		release()
		waitFor(t, "the queue to empty", func() bool {
			s := a.stats(1)
			return s.Queued == 0 && s.Sent+s.Dropped >= n+1
		})
		time.Sleep(200 * time.Millisecond)
		if s := a.stats(1); s.Sent+s.Dropped != n+1 {
			t.Errorf("%d messages counted as %d sent + %d dropped = %d", n+1, s.Sent, s.Dropped, s.Sent+s.Dropped)
		}
	})
	t.Run("a busy loop is not a silent peer", func(t *testing.T) {
		// The loop runs a turn that takes 2.5 idle timeouts (an fsync on
		// a stalled disk, say) while the peer's keepalives wait in the
		// socket: the connection is read before it is judged idle, and
		// kept. (The keepalives come 30 times per idle timeout, so that a
		// loaded machine's own stalls do not time the connection out.)
		noPeerGoroutinesAtEnd(t)
		const idle = time.Second
		tps := startCluster(t, 2, func(c *PeerConfig) {
			c.KeepaliveInterval = idle / 30
			c.IdleTimeout = idle
		})
		a, b := tps[0], tps[1]
		waitFor(t, "A to connect to B", func() bool { return a.stats(1).Connected && b.stats(0).Inbound })
		ran := make(chan struct{})
		if !b.loop.post(func() {
			time.Sleep(5 * idle / 2)
			close(ran)
		}) {
			t.Fatal("post refused")
		}
		<-ran
		a.Send(1, []byte("after the stall"))
		waitFor(t, "the message sent after the stall, or the connection's end", func() bool {
			return b.in.has("after the stall") || b.log.has("i/o timeout")
		})
		if b.log.has("i/o timeout") {
			t.Fatalf("B closed A's connection as idle while its own loop was busy:\n%s", b.log)
		}
		if s := a.stats(1); s.Reconnects != 0 {
			t.Errorf("A reconnected to B %d times", s.Reconnects)
		}
	})
	for _, c := range []struct {
		name string
		test func(*testing.T)
	}{
		{"deliver in all directions", TestPeersDeliverBetweenThreeNodesInAllDirections},
		{"late start and restart", TestPeersLateStartAndRestartAreReconnected},
		{"refuse bad handshakes", TestPeersRefuseBadHandshakes},
		{"oversized messages", TestPeersOversizedMessages},
		{"corrupt frames", TestPeersCorruptFramesCloseTheConnection},
		{"idle connection closed", TestPeersIdleConnectionIsClosed},
		{"close interrupts handshake", TestPeersCloseInterruptsDialsAndHandshakes},
	} {
		t.Run(c.name, c.test)
	}
}

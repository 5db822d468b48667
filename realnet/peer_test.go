package realnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/core"
)

// The tests below run Peers on real loopback sockets. Nothing waits for a
// fixed time: every wait polls for the event with a generous deadline, so a
// loaded machine makes them slower, not flaky.

const waitMax = 30 * time.Second

// waitFor polls cond until it holds, failing the test after waitMax.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitMax, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noPeerGoroutinesAtEnd checks, once the test and its other cleanups are
// done, that no goroutine of Peers is left: a goleak by hand, which looks
// only at this file's goroutines so that the host tests' cannot confuse it.
func noPeerGoroutinesAtEnd(t *testing.T) {
	t.Cleanup(func() {
		var left []string
		deadline := time.Now().Add(waitMax)
		for {
			left = peerGoroutines()
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Errorf("%d goroutines of Peers left after Close:\n\n%s", len(left), strings.Join(left, "\n\n"))
	})
}

func peerGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "realnet.(*Peers).") || strings.Contains(g, "realnet.(*peer).") {
			left = append(left, g)
		}
	}
	return left
}

// testLog collects log lines.
type testLog struct {
	t     *testing.T
	name  string
	mu    sync.Mutex
	lines []string
}

func (l *testLog) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

func (l *testLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			return true
		}
	}
	return false
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *testLog) waitFor(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for !l.has(substr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q; its log:\n%s", l.name, substr, l)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inbox collects delivered messages.
type inbox struct {
	mu        sync.Mutex
	msgs      []delivered
	onDeliver func() // if set, runs in every deliver
}

type delivered struct {
	from core.NodeID
	msg  string
}

func (b *inbox) deliver(from core.NodeID, msg []byte) {
	b.mu.Lock()
	b.msgs = append(b.msgs, delivered{from, string(msg)})
	hook := b.onDeliver
	b.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (b *inbox) all() []delivered {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

func (b *inbox) has(msg string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.msgs {
		if d.msg == msg {
			return true
		}
	}
	return false
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// testPeer is one node's transport with its log and inbox.
type testPeer struct {
	*Peers
	cfg  PeerConfig
	log  *testLog
	in   *inbox
	loop *Host // the host whose loop reads the accepted connections (peersOnLoop), or nil
}

const testClusterID = 7

// testPeerConfig is quick to retry and slow to give up: backoff short, so a
// restarted peer is found quickly; timeouts long, so a loaded machine does
// not break a healthy connection.
func testPeerConfig(t *testing.T, id core.NodeID, addrs []string) (PeerConfig, *testLog) {
	cfg := DefaultPeerConfig()
	cfg.ID = id
	cfg.Listen = addrs[id]
	cfg.ClusterID = testClusterID
	cfg.Peers = map[core.NodeID]string{}
	for i, a := range addrs {
		if core.NodeID(i) != id {
			cfg.Peers[core.NodeID(i)] = a
		}
	}
	cfg.DialBackoffMin = 5 * time.Millisecond
	cfg.DialBackoffMax = 100 * time.Millisecond
	cfg.DialTimeout = 10 * time.Second
	cfg.HandshakeTimeout = 10 * time.Second
	cfg.WriteTimeout = 10 * time.Second
	cfg.KeepaliveInterval = time.Second
	cfg.IdleTimeout = 20 * time.Second
	l := &testLog{t: t, name: fmt.Sprintf("node %d", id)}
	cfg.Logf = l.logf
	return cfg, l
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// freeAddr is a loopback address that nothing listens on (for now): a peer
// that is down.
func freeAddr(t *testing.T) string {
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// peersOnLoop, when set, has newTestPeer give every transport a host of its
// own whose waiting event loop reads the accepted connections (ReadOn);
// the messages still go to the transport's inbox. TestPeersOnAnEventLoop
// runs the receiving side's tests again so.
var peersOnLoop bool

// newTestPeer makes a transport from cfg; start it with startOn or Start.
func newTestPeer(t *testing.T, cfg PeerConfig, l *testLog) *testPeer {
	t.Helper()
	var loop *Host
	if peersOnLoop {
		hcfg := testConfig()
		hcfg.EventLoops = 1
		loop = startHost(t, newTestNode(t), hcfg).host
	}
	p, err := NewPeers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if loop != nil {
		p.ReadOn(loop)
	}
	t.Cleanup(func() { p.Close() })
	return &testPeer{Peers: p, cfg: cfg, log: l, in: &inbox{}, loop: loop}
}

func (tp *testPeer) startOn(t *testing.T, ln net.Listener) {
	t.Helper()
	if err := tp.StartOn(ln, tp.in.deliver); err != nil {
		t.Fatal(err)
	}
}

// startCluster starts n connected transports, tweaked by tweak.
func startCluster(t *testing.T, n int, tweak func(*PeerConfig)) []*testPeer {
	t.Helper()
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range lns {
		lns[i] = listenLoopback(t)
		addrs[i] = lns[i].Addr().String()
	}
	tps := make([]*testPeer, n)
	for i := range tps {
		cfg, l := testPeerConfig(t, core.NodeID(i), addrs)
		if tweak != nil {
			tweak(&cfg)
		}
		tps[i] = newTestPeer(t, cfg, l)
	}
	for i, tp := range tps {
		tp.startOn(t, lns[i])
	}
	return tps
}

func (tp *testPeer) stats(id core.NodeID) PeerStats {
	for _, s := range tp.Stats() {
		if s.ID == id {
			return s
		}
	}
	panic(fmt.Sprintf("no peer %d", id))
}

// payload is message k from one node to another, with a size that varies
// from a few bytes past the write buffer to a few MiB.
func payload(from, to core.NodeID, k int) []byte {
	head := fmt.Sprintf("%d>%d #%04d|", from, to, k)
	size := k % 7 * 10
	switch {
	case k == 13:
		size = 5<<20 + 3 // several read and write chunks
	case k%50 == 0:
		size = 300 << 10 // past the 64 KiB buffers
	}
	b := make([]byte, len(head)+size)
	copy(b, head)
	for i := len(head); i < len(b); i++ {
		b[i] = byte(i*31 + k)
	}
	return b
}

func TestPeersDeliverBetweenThreeNodesInAllDirections(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	const perPair = 200
	tps := startCluster(t, 3, nil)
	for k := range perPair {
		for _, from := range tps {
			for _, to := range tps {
				if from != to {
					from.Send(to.cfg.ID, payload(from.cfg.ID, to.cfg.ID, k))
				}
			}
		}
	}
	for _, tp := range tps {
		waitFor(t, fmt.Sprintf("node %d to receive %d messages", tp.cfg.ID, 2*perPair), func() bool {
			return tp.in.count() >= 2*perPair
		})
	}
	for _, tp := range tps {
		next := map[core.NodeID]int{}
		for _, d := range tp.in.all() {
			k := next[d.from]
			next[d.from]++
			// One connection per direction, no loss: every message
			// arrives once, intact and in order.
			if want := payload(d.from, tp.cfg.ID, k); d.msg != string(want) {
				t.Fatalf("node %d: message %d from %d: got %d bytes starting %q, want %d bytes starting %q",
					tp.cfg.ID, k, d.from, len(d.msg), d.msg[:min(len(d.msg), 12)], len(want), want[:12])
			}
		}
		for _, s := range tp.Stats() {
			if s.Received != perPair || next[s.ID] != perPair {
				t.Errorf("node %d: received %d (counted %d) from %d, want %d", tp.cfg.ID, next[s.ID], s.Received, s.ID, perPair)
			}
		}
	}
	for _, tp := range tps {
		waitFor(t, "every Sent counted", func() bool {
			for _, s := range tp.Stats() {
				if s.Sent != perPair {
					return false
				}
			}
			return true
		})
		for _, s := range tp.Stats() {
			if !s.Connected || !s.Inbound || s.Dropped != 0 || s.Reconnects != 0 || s.Queued != 0 {
				t.Errorf("node %d: %+v", tp.cfg.ID, s)
			}
		}
	}
}

func TestPeersLateStartAndRestartAreReconnected(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	lnA := listenLoopback(t)
	addrs := []string{lnA.Addr().String(), freeAddr(t)}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	a := newTestPeer(t, cfgA, logA)
	a.startOn(t, lnA)

	// B is down: A queues.
	for k := range 10 {
		a.Send(1, []byte(fmt.Sprintf("early %d", k)))
	}
	waitFor(t, "A to fail to reach B", func() bool { return logA.has("cannot connect to peer 1") })
	if s := a.stats(1); s.Connected || s.Queued != 10 {
		t.Fatalf("with B down: %+v", s)
	}

	// B starts late and gets what was queued, in order.
	cfgB, logB := testPeerConfig(t, 1, addrs)
	b := newTestPeer(t, cfgB, logB)
	if err := b.Start(b.in.deliver); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to get the early messages", func() bool { return b.in.count() == 10 })
	for k, d := range b.in.all() {
		if d.from != 0 || d.msg != fmt.Sprintf("early %d", k) {
			t.Fatalf("B got %+v as message %d", d, k)
		}
	}
	b.Send(0, []byte("hello from B"))
	waitFor(t, "A to hear from B", func() bool { return a.in.has("hello from B") })

	// B stops: A notices, queues again, and B's restart gets it all.
	b.Close()
	waitFor(t, "A to see B gone", func() bool { return !a.stats(1).Connected })
	for k := range 5 {
		a.Send(1, []byte(fmt.Sprintf("while down %d", k)))
	}
	b2 := newTestPeer(t, cfgB, logB)
	if err := b2.Start(b2.in.deliver); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restarted B to get what was queued while it was down", func() bool { return b2.in.count() == 5 })
	for k, d := range b2.in.all() {
		if d.msg != fmt.Sprintf("while down %d", k) {
			t.Fatalf("restarted B got %q as message %d", d.msg, k)
		}
	}
	a.Send(1, []byte("after restart"))
	waitFor(t, "restarted B to get a new message", func() bool { return b2.in.has("after restart") })
	// B's new connection to A replaces its old one.
	b2.Send(0, []byte("B is back"))
	waitFor(t, "A to hear from restarted B", func() bool { return a.in.has("B is back") })
	if s := a.stats(1); s.Reconnects < 1 || !s.Connected {
		t.Errorf("A's view of B after its restart: %+v", s)
	}
	logA.waitFor(t, "connection to peer 1")
}

func TestPeersFullQueueDropsTheOldest(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	lnA := listenLoopback(t)
	addrs := []string{lnA.Addr().String(), freeAddr(t)}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	cfgA.QueueMax = 8
	a := newTestPeer(t, cfgA, logA)
	a.startOn(t, lnA)

	// B is down, so nothing leaves the queue.
	for k := range 20 {
		a.Send(1, []byte(fmt.Sprintf("m%02d", k)))
	}
	if s := a.stats(1); s.Queued != 8 || s.Dropped != 12 {
		t.Fatalf("after 20 sends into a queue of 8: %+v", s)
	}
	logA.waitFor(t, "queue to peer 1")

	cfgB, logB := testPeerConfig(t, 1, addrs)
	b := newTestPeer(t, cfgB, logB)
	if err := b.Start(b.in.deliver); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to get the queue", func() bool { return b.in.count() == 8 })
	var got []string
	for _, d := range b.in.all() {
		got = append(got, d.msg)
	}
	want := []string{"m12", "m13", "m14", "m15", "m16", "m17", "m18", "m19"}
	if !slices.Equal(got, want) {
		t.Errorf("B got %q, want the newest eight %q", got, want)
	}
}

func TestPeersQueueBytesLimitDropsTheOldest(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	cfg, l := testPeerConfig(t, 0, []string{"127.0.0.1:1", freeAddr(t)})
	cfg.QueueBytesMax = 100
	cfg.FrameBytesMax = 100
	p := newTestPeer(t, cfg, l)
	// Not started: Send queues all the same.
	for _, n := range []int{40, 40, 40, 100, 10} {
		p.Send(1, make([]byte, n))
	}
	// 40+40, then 40 pushes one out; 100 pushes out both; 10 pushes out the 100.
	if s := p.stats(1); s.Queued != 1 || s.Dropped != 4 {
		t.Errorf("%+v", s)
	}
}

// stuckPeer accepts connections as node id would, answers the hello, and
// then never reads: a peer that hangs.
func stuckPeer(t *testing.T, id core.NodeID) (addr string, conns func() int) {
	ln := listenLoopback(t)
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var b [helloBytes]byte
			if _, err := io.ReadFull(nc, b[:]); err != nil {
				nc.Close()
				continue
			}
			in, _ := decodeHello(&b)
			out := (&hello{version: helloVersion, kind: helloAccept, clusterID: testClusterID,
				from: uint32(id), to: in.from, frameBytesMax: 1 << 30}).encode()
			nc.Write(out[:])
			mu.Lock()
			held = append(held, nc)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(held)
	}
}

func TestPeersSendNeverBlocksOnAStuckPeer(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	lnA := listenLoopback(t)
	stuck, conns := stuckPeer(t, 1)
	addrs := []string{lnA.Addr().String(), stuck}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	cfgA.QueueMax = 64
	cfgA.WriteTimeout = 200 * time.Millisecond
	a := newTestPeer(t, cfgA, logA)
	a.startOn(t, lnA)
	waitFor(t, "A to connect to the stuck peer", func() bool { return a.stats(1).Connected })

	// Far more than the socket buffers hold. The same bytes every time:
	// Peers only reads what it is given.
	msg := bytes.Repeat([]byte("x"), 64<<10)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for range 4000 {
			a.Send(1, msg)
		}
	}()
	select {
	case <-sent:
	case <-time.After(waitMax):
		t.Fatal("Send blocked on a peer that does not read")
	}
	// The sender's write times out, it drops the connection and dials again.
	logA.waitFor(t, "connection to peer 1")
	waitFor(t, "a second connection to the stuck peer", func() bool { return conns() >= 2 })
	if s := a.stats(1); s.Dropped == 0 || s.Queued > 64 {
		t.Errorf("%+v", s)
	}
	// Close reaches a sender blocked in a write.
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitMax):
		t.Fatal("Close did not return while the sender was writing to a stuck peer")
	}
	if s := a.stats(1); s.Queued != 0 {
		t.Errorf("after Close: %+v", s)
	}
}

func TestPeersSendToAnUnknownOrEmptyIsDroppedAndLogged(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 2, nil)
	a, b := tps[0], tps[1]
	a.Send(5, []byte("to nobody"))
	a.Send(0, []byte("to itself"))
	a.Send(1, nil)
	a.Log(t, "not a peer of node 0")
	a.Log(t, "empty message to peer 1")
	a.Send(1, []byte("marker"))
	waitFor(t, "the marker", func() bool { return b.in.has("marker") })
	if got := b.in.all(); len(got) != 1 {
		t.Errorf("B got %v", got)
	}
	if s := a.stats(1); s.Dropped != 1 {
		t.Errorf("%+v", s)
	}
}

func (tp *testPeer) Log(t *testing.T, substr string) { t.Helper(); tp.log.waitFor(t, substr) }

func TestPeersOversizedMessages(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	const aMax, bMax = 1 << 20, 64 << 10
	tps := startCluster(t, 2, withGhost(t, func(c *PeerConfig) {
		if c.ID == 0 {
			c.FrameBytesMax = aMax
		} else {
			c.FrameBytesMax = bMax
		}
	}))
	a, b := tps[0], tps[1]
	waitFor(t, "A to connect", func() bool { return a.stats(1).Connected })

	a.Send(1, make([]byte, aMax+1)) // over A's own limit: dropped in Send
	a.Log(t, "over FrameBytesMax")
	a.Send(1, make([]byte, bMax+1)) // over B's limit, which B announced: dropped by the sender
	a.Send(1, bytes.Repeat([]byte("b"), bMax))
	a.Send(1, []byte("small"))
	waitFor(t, "the messages that fit", func() bool { return b.in.has("small") })
	a.Log(t, "over the peer's frame limit")
	got := b.in.all()
	if len(got) != 2 || len(got[0].msg) != bMax {
		t.Errorf("B got %d messages", len(got))
	}
	if s := a.stats(1); s.Dropped != 2 || s.Reconnects != 0 {
		t.Errorf("%+v", s)
	}

	// An oversized frame on the wire closes the connection undelivered.
	nc := rawPeer(t, b.Addr().String(), ghostID, 1, testClusterID)
	writeFrame(t, nc, make([]byte, bMax+1), nil)
	waitClosed(t, nc)
	b.Log(t, "over FrameBytesMax")
	if n := b.in.count(); n != 2 {
		t.Errorf("B has %d messages after an oversized frame, want 2", n)
	}
}

// ghostID is a peer in the configuration that is down. Tests pose as it
// with raw connections; posing as a live peer would have its connection
// and the test's replace each other.
const ghostID = 9

// withGhost adds the ghost to the configuration, at an address where
// nothing listens.
func withGhost(t *testing.T, next func(*PeerConfig)) func(*PeerConfig) {
	// The address is taken when the first node's config is made, after
	// startCluster has its listeners: taken before, the port it freed
	// could be handed to one of them, and the two nodes then share it.
	addr := ""
	return func(c *PeerConfig) {
		if addr == "" {
			addr = freeAddr(t)
		}
		c.Peers[ghostID] = addr
		if next != nil {
			next(c)
		}
	}
}

// rawPeer dials addr as node from and completes the handshake.
func rawPeer(t *testing.T, addr string, from, to core.NodeID, cluster uint64) net.Conn {
	t.Helper()
	nc, reply := rawHello(t, addr, &hello{version: helloVersion, kind: helloDial, clusterID: cluster,
		from: uint32(from), to: uint32(to), frameBytesMax: 1 << 20})
	if reply == nil || reply.status != helloOK {
		t.Fatalf("handshake refused: %+v", reply)
	}
	return nc
}

// rawHello sends h and returns the answer, or nil if the connection closed
// without one.
func rawHello(t *testing.T, addr string, h *hello) (net.Conn, *hello) {
	t.Helper()
	b := h.encode()
	return rawHelloBytes(t, addr, b[:])
}

func rawHelloBytes(t *testing.T, addr string, b []byte) (net.Conn, *hello) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(waitMax))
	var in [helloBytes]byte
	if _, err := io.ReadFull(nc, in[:]); err != nil {
		return nc, nil
	}
	nc.SetReadDeadline(time.Time{})
	h, err := decodeHello(&in)
	if err != nil {
		t.Fatalf("bad answer to a hello: %v", err)
	}
	return nc, &h
}

// writeFrame writes msg as a frame, after corrupt changes the encoded bytes.
func writeFrame(t *testing.T, nc net.Conn, msg []byte, corrupt func([]byte)) {
	t.Helper()
	h := frameHeader(msg)
	b := append(h[:], msg...)
	if corrupt != nil {
		corrupt(b)
	}
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// waitClosed waits for the other side to close nc.
func waitClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(waitMax))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection was not closed")
	}
}

func TestPeersRefuseBadHandshakes(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 3, nil)
	a, b := tps[0], tps[1]
	addr := b.Addr().String()
	ok := hello{version: helloVersion, kind: helloDial, clusterID: testClusterID, from: 0, to: 1, frameBytesMax: 1 << 20}
	for _, tc := range []struct {
		name   string
		change func(*hello)
		status uint8
	}{
		{"unknown node id", func(h *hello) { h.from = 9 }, helloUnknownSender},
		{"wrong cluster id", func(h *hello) { h.clusterID = testClusterID + 1 }, helloWrongCluster},
		{"another receiver", func(h *hello) { h.to = 2 }, helloWrongReceiver},
		{"the receiver itself", func(h *hello) { h.from = 1 }, helloFromSelf},
		{"another version", func(h *hello) { h.version = 9 }, helloBadVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ok
			tc.change(&h)
			nc, reply := rawHello(t, addr, &h)
			if reply == nil || reply.status != tc.status || reply.kind != helloAccept || reply.from != 1 || reply.clusterID != testClusterID {
				t.Fatalf("answer %+v, want status %d", reply, tc.status)
			}
			// A frame sent anyway goes nowhere.
			fh := frameHeader([]byte("sneaked in"))
			nc.Write(append(fh[:], "sneaked in"...))
			waitClosed(t, nc)
			b.Log(t, helloStatusText(tc.status))
		})
	}
	for _, tc := range []struct {
		name string
		hbuf func() []byte
		log  string
		want string // the answer, if any
	}{
		{"not a peer", func() []byte { return append([]byte{0xff}, strings.Repeat(" ", helloBytes)...) }, "bad magic", ""},
		{"hello checksum", func() []byte { b := ok.encode(); b[16] ^= 1; return b[:] }, "hello checksum", ""},
		{"a hello that stops short", func() []byte { b := ok.encode(); return b[:10] }, "no hello", ""},
		// A client at the replication port by mistake is told so at
		// once, in its protocol; it waited out the handshake timeout
		// and met a closed connection.
		{"a JSON client", func() []byte { return []byte("{\"op\":\"ping\"}\n") }, "a client's request",
			`{"ok":false,"error":{"code":"bad_request","message":"` + peerPortMessage + `"}}` + "\n"},
		{"a RESP client", func() []byte { return []byte("*1\r\n$4\r\nPING\r\n") }, "a client's request", "-ERR " + peerPortMessage + "\r\n"},
		{"an inline command", func() []byte { return []byte("PING\r\n") }, "a client's request", "-ERR " + peerPortMessage + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.Write(tc.hbuf())
			if tcp, ok := nc.(*net.TCPConn); ok {
				tcp.CloseWrite() // the short hello ends here
			}
			nc.SetReadDeadline(time.Now().Add(waitMax))
			if got, err := io.ReadAll(nc); string(got) != tc.want {
				t.Errorf("got %q back (%v), want %q", got, err, tc.want)
			}
			b.Log(t, tc.log)
		})
	}
	// Nothing got through, and the real peers are still fine.
	a.Send(1, []byte("marker"))
	waitFor(t, "the marker", func() bool { return b.in.has("marker") })
	if got := b.in.all(); len(got) != 1 {
		t.Errorf("B got %v", got)
	}
}

func TestPeersWithAnotherClusterIDRefuseEachOther(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 2, func(c *PeerConfig) {
		if c.ID == 1 {
			c.ClusterID = testClusterID + 1
		}
	})
	a, b := tps[0], tps[1]
	a.Send(1, []byte("to B"))
	b.Send(0, []byte("to A"))
	a.Log(t, "refused by node 1 of cluster 0000000000000008 (version 1): wrong cluster id")
	b.Log(t, "refused by node 0 of cluster 0000000000000007 (version 1): wrong cluster id")
	a.Log(t, "refused a connection")
	b.Log(t, "refused a connection")
	for _, tp := range tps {
		s := tp.Stats()[0]
		if s.Connected || s.Inbound || s.Received != 0 || s.Queued != 1 {
			t.Errorf("node %d: %+v", tp.cfg.ID, s)
		}
	}
	if a.in.count()+b.in.count() != 0 {
		t.Errorf("something was delivered across clusters")
	}
}

// A mesh's nodes say "mesh" of their group, not "cluster" (Group).
func TestPeersOfAMeshWithAnotherIDSayMesh(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 2, func(c *PeerConfig) {
		c.Group = "mesh"
		if c.ID == 1 {
			c.ClusterID = testClusterID + 1
		}
	})
	a, b := tps[0], tps[1]
	a.Send(1, []byte("to B"))
	b.Send(0, []byte("to A"))
	a.Log(t, "refused by node 1 of mesh 0000000000000008 (version 1): wrong mesh id")
	b.Log(t, "refused by node 0 of mesh 0000000000000007 (version 1): wrong mesh id")
	a.Log(t, "wrong mesh id (it claims node 1 of mesh 0000000000000008")
}

func TestPeersWrongAddressIsReported(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	// Node 0 thinks node 2 is at node 1's address.
	lns := []net.Listener{listenLoopback(t), listenLoopback(t)}
	addrs := []string{lns[0].Addr().String(), lns[1].Addr().String(), "x"}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	cfgA.Peers = map[core.NodeID]string{2: addrs[1]}
	cfgB, logB := testPeerConfig(t, 1, addrs[:2])
	a, b := newTestPeer(t, cfgA, logA), newTestPeer(t, cfgB, logB)
	a.startOn(t, lns[0])
	b.startOn(t, lns[1])
	a.Log(t, "meant for another node")
	b.Log(t, "meant for another node")
}

func TestPeersSelfDialIsRefused(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	// Node 0's list gives its own address to node 1 (under another name,
	// which validation cannot see through).
	ln := listenLoopback(t)
	cfg, l := testPeerConfig(t, 0, []string{"this node", ln.Addr().String()})
	a := newTestPeer(t, cfg, l)
	a.startOn(t, ln)
	a.Send(1, []byte("to myself"))
	a.Log(t, "refused by node 0 of cluster 0000000000000007 (version 1): sender has the receiver's own id")
	a.Log(t, "refused a connection")
	if a.in.count() != 0 {
		t.Errorf("a node delivered its own message")
	}
}

func TestPeersCorruptFramesCloseTheConnection(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 2, withGhost(t, nil))
	b := tps[1]
	addr := b.Addr().String()
	msg := []byte("a message that gets damaged on the way")
	for i, tc := range []struct {
		name    string
		corrupt func([]byte)
		log     string
	}{
		{"payload bit", func(f []byte) { f[frameHeaderBytes+3] ^= 0x10 }, "checksum mismatch"},
		{"checksum bit", func(f []byte) { f[5] ^= 1 }, "checksum mismatch"},
		// A shorter length leaves the frame's tail to be read as the next
		// frame's header, but the checksum fails first.
		{"length shorter", func(f []byte) { f[0]-- }, "checksum mismatch"},
		{"length over the limit", func(f []byte) { f[3] = 0x7f }, "over FrameBytesMax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := rawPeer(t, addr, ghostID, 1, testClusterID)
			writeFrame(t, nc, msg, tc.corrupt)
			waitClosed(t, nc)
			b.Log(t, tc.log)
			// A good frame on a new connection still gets through, and
			// was the only one.
			nc = rawPeer(t, addr, ghostID, 1, testClusterID)
			marker := fmt.Sprintf("marker %d", i)
			writeFrame(t, nc, []byte(marker), nil)
			waitFor(t, "the marker", func() bool { return b.in.has(marker) })
			if n := b.in.count(); n != i+1 {
				t.Fatalf("B has %d messages, want %d markers only: %v", n, i+1, b.in.all())
			}
		})
	}
	t.Run("cut short", func(t *testing.T) {
		nc := rawPeer(t, addr, ghostID, 1, testClusterID)
		h := frameHeader(msg)
		nc.Write(append(h[:], msg[:10]...))
		nc.Close()
		b.Log(t, "unexpected EOF")
		if n := b.in.count(); n != 4 {
			t.Errorf("B has %d messages, want the 4 markers", n)
		}
	})
}

func TestPeersIdleConnectionIsClosed(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	// The keepalives come 30 times per idle timeout, so that even a
	// loaded machine's stalls do not let a healthy connection time out.
	tps := startCluster(t, 2, withGhost(t, func(c *PeerConfig) {
		c.KeepaliveInterval = 50 * time.Millisecond
		c.IdleTimeout = 1500 * time.Millisecond
	}))
	a, b := tps[0], tps[1]
	waitFor(t, "A to connect to B", func() bool { return a.stats(1).Connected && b.stats(0).Inbound })
	// A raw peer that completes its hello and then says nothing, not even
	// keepalives, is hung up on...
	nc := rawPeer(t, b.Addr().String(), ghostID, 1, testClusterID)
	waitClosed(t, nc)
	b.Log(t, "i/o timeout")
	// ... while A's connection, as quiet and older, is kept by its
	// keepalives.
	if s := a.stats(1); !s.Connected || s.Reconnects != 0 {
		t.Errorf("A's quiet connection to B: %+v", s)
	}
}

func TestPeersSendKeepalivesWhenQuiet(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	// A raw acceptor answers A's hello and reads what follows.
	ln := listenLoopback(t)
	addrs := []string{freeAddr(t), ln.Addr().String()}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	cfgA.KeepaliveInterval = 20 * time.Millisecond
	cfgA.IdleTimeout = time.Second
	a := newTestPeer(t, cfgA, logA)
	if err := a.Start(a.in.deliver); err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ln.Close()
	nc.SetDeadline(time.Now().Add(waitMax))
	var hb [helloBytes]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		t.Fatal(err)
	}
	in, err := decodeHello(&hb)
	if err != nil || in.from != 0 || in.to != 1 || in.clusterID != testClusterID || in.kind != helloDial {
		t.Fatalf("hello %+v, %v", in, err)
	}
	out := (&hello{version: helloVersion, kind: helloAccept, clusterID: testClusterID, from: 1, to: 0, frameBytesMax: 1 << 20}).encode()
	nc.Write(out[:])
	for range 3 {
		var fh [frameHeaderBytes]byte
		if _, err := io.ReadFull(nc, fh[:]); err != nil {
			t.Fatal(err)
		}
		if want := frameHeader(nil); fh != want {
			t.Fatalf("frame header %x, want a keepalive %x", fh, want)
		}
	}
}

func TestPeersBlockedDeliverHoldsUpOnlyItsPeer(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	lns := []net.Listener{listenLoopback(t), listenLoopback(t), listenLoopback(t)}
	addrs := []string{lns[0].Addr().String(), lns[1].Addr().String(), lns[2].Addr().String()}
	tps := make([]*testPeer, 3)
	for i := range tps {
		cfg, l := testPeerConfig(t, core.NodeID(i), addrs)
		tps[i] = newTestPeer(t, cfg, l)
	}
	a, b, c := tps[0], tps[1], tps[2]
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before Close, which waits for deliver
	if err := a.StartOn(lns[0], func(from core.NodeID, msg []byte) {
		if from == 1 {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		a.in.deliver(from, msg)
	}); err != nil {
		t.Fatal(err)
	}
	b.startOn(t, lns[1])
	c.startOn(t, lns[2])

	for k := range 5 {
		b.Send(0, []byte(fmt.Sprintf("from B %d", k)))
	}
	select {
	case <-entered:
	case <-time.After(waitMax):
		t.Fatal("deliver never called for B's message")
	}
	for k := range 5 {
		c.Send(0, []byte(fmt.Sprintf("from C %d", k)))
	}
	waitFor(t, "C's messages while B's are held up", func() bool { return a.in.count() == 5 })
	for _, d := range a.in.all() {
		if d.from != 2 {
			t.Fatalf("A delivered %+v while B's deliver was blocked", d)
		}
	}
	releaseOnce.Do(func() { close(release) })
	waitFor(t, "B's messages once released", func() bool { return a.in.count() == 10 })
}

func TestPeersCloseInterruptsDialsAndHandshakes(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	// Peer 1 accepts but never answers the hello; peer 2's connection to
	// A never says hello. Both wait on timeouts far longer than the test.
	silent := listenLoopback(t)
	defer silent.Close()
	go func() {
		for {
			nc, err := silent.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
		}
	}()
	lnA := listenLoopback(t)
	addrs := []string{lnA.Addr().String(), silent.Addr().String(), freeAddr(t)}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	cfgA.HandshakeTimeout = time.Hour
	cfgA.DialTimeout = time.Hour
	a := newTestPeer(t, cfgA, logA)
	a.startOn(t, lnA)
	mute, err := net.Dial("tcp", lnA.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	a.Send(1, []byte("never answered"))
	waitFor(t, "the goroutines to be waiting", func() bool { return len(peerGoroutines()) >= 4 })

	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitMax):
		t.Fatal("Close did not interrupt a handshake")
	}
	a.Send(1, []byte("after close"))
	if s := a.stats(1); s.Queued != 0 || s.Dropped != 2 {
		t.Errorf("after Close: %+v", s)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ln := listenLoopback(t)
	defer ln.Close()
	if err := a.StartOn(ln, a.in.deliver); err == nil {
		t.Errorf("StartOn after Close worked")
	}
}

func TestPeersStartErrors(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	taken := listenLoopback(t)
	defer taken.Close()
	cfg, l := testPeerConfig(t, 0, []string{taken.Addr().String(), freeAddr(t)})
	p := newTestPeer(t, cfg, l)
	err := p.Start(p.in.deliver)
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Errorf("Start on a taken port: %v", err)
	}
	spare := listenLoopback(t)
	defer spare.Close()
	if err := p.StartOn(spare, nil); err == nil {
		t.Errorf("StartOn with nil deliver worked")
	}
	ln := listenLoopback(t)
	if err := p.StartOn(ln, p.in.deliver); err != nil {
		t.Fatal(err)
	}
	if p.Addr().String() != ln.Addr().String() {
		t.Errorf("Addr %v, want %v", p.Addr(), ln.Addr())
	}
	if err := p.StartOn(spare, p.in.deliver); err == nil {
		t.Errorf("second StartOn worked")
	}
}

func TestPeerConfigValidation(t *testing.T) {
	good := func() PeerConfig {
		c := DefaultPeerConfig()
		c.ID = 1
		c.Listen = "127.0.0.1:7001"
		c.ClusterID = 3
		c.Peers = map[core.NodeID]string{0: "127.0.0.1:7000", 2: "127.0.0.1:7002"}
		return c
	}
	if _, err := NewPeers(good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		want   string
		change func(*PeerConfig)
	}{
		{"lists itself", func(c *PeerConfig) { c.Peers[1] = "127.0.0.1:7009" }},
		{"empty address", func(c *PeerConfig) { c.Peers[2] = "" }},
		{"share the address", func(c *PeerConfig) { c.Peers[2] = c.Peers[0] }},
		{"share the address", func(c *PeerConfig) { c.Peers[2] = c.Listen }},
		{"out of range", func(c *PeerConfig) { c.Peers[-1] = "127.0.0.1:7003" }},
		{"out of range", func(c *PeerConfig) { c.ID = -1 }},
		{"Listen address is empty", func(c *PeerConfig) { c.Listen = "" }},
		{"ClusterID", func(c *PeerConfig) { c.ClusterID = 0 }},
		{"QueueMax", func(c *PeerConfig) { c.QueueMax = 0 }},
		{"FrameBytesMax", func(c *PeerConfig) { c.FrameBytesMax = 0 }},
		{"FrameBytesMax", func(c *PeerConfig) { c.FrameBytesMax, c.QueueBytesMax = 2<<30, 4<<30 }},
		{"QueueBytesMax", func(c *PeerConfig) { c.QueueBytesMax = c.FrameBytesMax - 1 }},
		{"DialBackoffMax", func(c *PeerConfig) { c.DialBackoffMax = c.DialBackoffMin / 2 }},
		{"WriteTimeout", func(c *PeerConfig) { c.WriteTimeout = 0 }},
		{"IdleTimeout", func(c *PeerConfig) { c.IdleTimeout = c.KeepaliveInterval }},
	} {
		c := good()
		tc.change(&c)
		_, err := NewPeers(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error about %q, got %v", tc.want, err)
		}
	}
}

func TestHelloAndFrameEncoding(t *testing.T) {
	h := hello{version: helloVersion, kind: helloAccept, status: helloWrongCluster, clusterID: 1<<63 + 5,
		from: 1<<32 - 1, to: 2, frameBytesMax: 12345}
	b := h.encode()
	got, err := decodeHello(&b)
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if string(b[:4]) != "dkvp" {
		t.Errorf("magic %q", b[:4])
	}
	for i := range helloBytes * 8 {
		c := b
		c[i/8] ^= 1 << (i % 8)
		if _, err := decodeHello(&c); err == nil {
			t.Fatalf("bit %d flipped went unnoticed", i)
		}
	}
	msg := []byte("payload")
	fh := frameHeader(msg)
	if n := binary.LittleEndian.Uint32(fh[:4]); n != uint32(len(msg)) {
		t.Errorf("length %d", n)
	}
	for i := range (frameHeaderBytes + len(msg)) * 8 {
		f := append(fh[:], msg...)
		f[i/8] ^= 1 << (i % 8)
		n := int(binary.LittleEndian.Uint32(f[:4]))
		if n == len(msg) && frameChecksum(f[:4], f[8:]) == binary.LittleEndian.Uint32(f[4:8]) {
			t.Fatalf("bit %d flipped went unnoticed", i)
		}
	}
}

// BenchmarkPeersSend measures messages from one node to another over
// loopback: the sender's coalescing is what makes small messages cheap.
func BenchmarkPeersSend(b *testing.B) {
	for _, size := range []int{100, 4 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			lns := []net.Listener{}
			addrs := []string{}
			for range 2 {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				lns = append(lns, ln)
				addrs = append(addrs, ln.Addr().String())
			}
			var ps []*Peers
			got := make(chan struct{}, 1<<16)
			for i := range 2 {
				cfg := DefaultPeerConfig()
				cfg.ID, cfg.Listen, cfg.ClusterID = core.NodeID(i), addrs[i], 1
				cfg.Peers = map[core.NodeID]string{core.NodeID(1 - i): addrs[1-i]}
				cfg.QueueMax = 1 << 16
				cfg.Logf = func(string, ...any) {}
				p, err := NewPeers(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				if err := p.StartOn(lns[i], func(core.NodeID, []byte) { got <- struct{}{} }); err != nil {
					b.Fatal(err)
				}
				ps = append(ps, p)
			}
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			// Keep at most a window in flight, so the queue never drops.
			const window = 1 << 12
			inFlight := 0
			for range b.N {
				if inFlight == window {
					<-got
					inFlight--
				}
				ps[0].Send(1, msg)
				inFlight++
			}
			for ; inFlight > 0; inFlight-- {
				<-got
			}
		})
	}
}

// A peer that connects to us ends our dial backoff towards it: a sender
// that failed to reach a peer while it was down dials it again as soon as
// the peer, back, connects, not when its backoff runs out. (A node
// restarted a moment before a hand-over took the office, and stepped down
// hearing no one: its followers' answers waited in their backoff.) Here
// the backoff is an hour, so only the peer's connection can end it.
func TestPeerThatConnectsEndsOurBackoff(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	lnA := listenLoopback(t)
	addrs := []string{lnA.Addr().String(), freeAddr(t)}
	cfgA, logA := testPeerConfig(t, 0, addrs)
	cfgA.DialBackoffMin, cfgA.DialBackoffMax = time.Hour, time.Hour
	a := newTestPeer(t, cfgA, logA)
	a.startOn(t, lnA)
	a.Send(1, []byte("while B is down"))
	waitFor(t, "A to fail to reach B", func() bool { return logA.has("cannot connect to peer 1") })

	cfgB, logB := testPeerConfig(t, 1, addrs)
	b := newTestPeer(t, cfgB, logB)
	if err := b.Start(b.in.deliver); err != nil {
		t.Fatal(err)
	}
	b.Send(0, []byte("B is up")) // B dials A
	waitFor(t, "A to hear from B", func() bool { return a.in.has("B is up") })
	waitFor(t, "B to get what A queued, A's backoff of an hour cut short", func() bool { return b.in.has("while B is down") })
}

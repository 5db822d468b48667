package realnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"dkv/core"
)

// Peers is the peer transport of a cluster or mesh node: core.Network over
// TCP, plus the receiving side that hands each message to a deliver func.
//
// Connections are one-way. A node dials every peer for its own outgoing
// messages, and accepts the connections its peers dial for theirs; so
// between two nodes there are two TCP connections, one per direction. Each
// side then has one job per connection (only write, or only read), no
// connection has two owners, and a restarted node needs no tie-break over
// which of two crossing connections survives. The cost, a second socket per
// pair, is nothing at three or five nodes.
//
// The sending side is one goroutine per peer. When the connection is up,
// nothing is queued and the socket takes the message at once, Send writes
// it itself, from the caller's goroutine (see sendInline): waking the
// sender for each message had cost a follower a good part of its CPU time
// per append. Otherwise Send puts the message in the peer's bounded queue
// and returns; it never blocks and never waits for a connection. The
// peer's sender dials (retrying with exponential backoff and jitter),
// writes whatever is queued through one buffer and flushes when the queue
// is empty, so a burst of messages leaves in one write. A write that
// makes no progress for WriteTimeout closes the connection, so a peer that
// stops reading cannot wedge its sender, let alone the node. While
// disconnected, messages stay queued up to the limit and go out on the next
// connection; when the queue is full the oldest message is dropped (see
// push). A small goroutine per connection waits for the acceptor to close
// it, so that a restarted peer is redialled at once rather than after a
// message has been written into the dead connection and lost.
//
// The receiving side is one goroutine per accepted connection. It checks
// the dialer's hello (magic and version, cluster id, sender id, intended
// receiver id) and answers it, then reads frames and calls deliver for each.
// A bad checksum or an oversized frame closes the connection; nothing of it
// is delivered. deliver may block (the host's queue pushes back): only that
// connection's reader waits, and other peers' messages go on arriving on
// their own connections. A peer keeps at most one accepted connection: a
// newer one from the same node replaces the older.
//
// Delivery is what core.Network promises, best effort: a message may be lost
// (queue full, connection broken mid-write, peer down) or, across a
// reconnection, overtaken by later ones. Within one connection, messages
// arrive in the order they were sent, at most once.
type Peers struct {
	cfg PeerConfig
	// key is the handshake's key (peerauth.go); nil without a secret.
	// SetSecret replaces it for the connections made from then on.
	key   atomic.Pointer[[]byte]
	log   *logLimiter
	peers map[core.NodeID]*peer // read-only after NewPeers
	ids   []core.NodeID         // sorted

	// ctx is cancelled by Close. Every connection and sleep watches it, so
	// that Close reaches goroutines blocked in I/O.
	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	started    bool
	closed     bool
	ln         net.Listener
	deliver    func(from core.NodeID, msg []byte)
	handshakes int                       // accepted connections that have not finished their hello
	inbound    map[core.NodeID]io.Closer // the accepted connection of each peer, if any
	// replacedAt holds, for each peer, when its accepted connection was
	// replaced while still open within the last twinWindow (at most
	// twinTimesMax times; register).
	replacedAt map[core.NodeID][]time.Time
	wg         sync.WaitGroup // every goroutine Peers starts
	// loop, if set (ReadOn), reads the accepted connections' frames on
	// its event loop where it can (Host.adoptFrames).
	loop *Host
	// metrics, if set (SetMetrics, before Start), hears of failed TLS
	// handshakes.
	metrics PeerMetrics
}

// frameStream is a connection whose frames a loop reads: Wait waits for
// it to end and says why; Close ends it.
type frameStream interface {
	io.Closer
	Wait() error
}

var _ core.Network = (*Peers)(nil)

// PeerConfig configures Peers. Start from DefaultPeerConfig.
type PeerConfig struct {
	// ID is this node.
	ID core.NodeID
	// Listen is this node's host:port for peer connections. Start binds
	// it; StartOn takes a listener bound by the caller instead.
	Listen string
	// Peers is every other node's host:port for peer connections.
	Peers map[core.NodeID]string
	// ClusterID identifies the cluster; it must not be zero, so that a
	// node whose configuration forgot it does not join another cluster
	// that also forgot it. A connection with another one is refused.
	ClusterID uint64
	// Group is what the log lines call the group ClusterID names:
	// "cluster" (the default, when empty) or "mesh". A mesh node's log
	// should not say "cluster" of its mesh.
	Group string
	// QueueMax and QueueBytesMax bound the messages queued for one peer;
	// beyond either, the oldest queued message is dropped.
	QueueMax      int
	QueueBytesMax int
	// FrameBytesMax bounds one message. A larger Send is dropped and
	// logged; a larger incoming frame closes the connection.
	FrameBytesMax int
	// DialBackoffMin and DialBackoffMax bound the wait between attempts to
	// reach a peer: it doubles on each failure, with jitter, and starts
	// over from the minimum once a connection has lasted DialBackoffMax.
	DialBackoffMin time.Duration
	DialBackoffMax time.Duration
	// DialTimeout bounds one TCP connect.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the exchange of hellos, on both sides.
	HandshakeTimeout time.Duration
	// WriteTimeout closes an outgoing connection on which a write has made
	// no progress for this long: a peer that stopped reading.
	WriteTimeout time.Duration
	// KeepaliveInterval is how long an outgoing connection may be silent
	// before the sender writes an empty frame, so that the receiver can
	// tell a quiet peer from a dead one.
	KeepaliveInterval time.Duration
	// IdleTimeout closes an accepted connection on which nothing, not even
	// a keepalive, has arrived for this long. It must be at least three
	// times KeepaliveInterval: a sender that wrote just after one tick of
	// its keepalive ticker writes the next keepalive two ticks later.
	IdleTimeout time.Duration
	// Logf writes one operator-facing line; nil means the standard logger.
	// Repeated lines of one kind are rate-limited.
	Logf func(format string, args ...any)
	// Secret, when set, is a password every node of the cluster shares:
	// a connection is refused unless both sides prove it (peerauth.go).
	Secret string
	// TLS, when set, wraps every peer connection in TLS before the hello
	// (tls.go). It must require and verify the other side's certificate
	// (tls.RequireAndVerifyClientCert), so that both ends are checked; the
	// dialer checks the acceptor's certificate against the host name of
	// its address.
	TLS *tls.Config
}

// DefaultPeerConfig is what a server uses unless told otherwise; ID,
// Listen, Peers and ClusterID are the caller's to fill in.
func DefaultPeerConfig() PeerConfig {
	return PeerConfig{
		// Raft keeps a few appends and heartbeats in flight per
		// follower; a thousand covers bursts with room to spare.
		QueueMax:      1024,
		QueueBytesMax: 128 << 20,
		// Room for an append of several full-size BulkSets. Snapshot
		// transfer must send chunks below this.
		FrameBytesMax:  64 << 20,
		DialBackoffMin: 20 * time.Millisecond,
		// A restarted node is found again within about a second.
		DialBackoffMax:    time.Second,
		DialTimeout:       time.Second,
		HandshakeTimeout:  2 * time.Second,
		WriteTimeout:      5 * time.Second,
		KeepaliveInterval: time.Second,
		IdleTimeout:       10 * time.Second,
	}
}

func (c *PeerConfig) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"QueueMax", int64(c.QueueMax)},
		{"QueueBytesMax", int64(c.QueueBytesMax)},
		{"FrameBytesMax", int64(c.FrameBytesMax)},
		{"DialBackoffMin", int64(c.DialBackoffMin)},
		{"DialBackoffMax", int64(c.DialBackoffMax)},
		{"DialTimeout", int64(c.DialTimeout)},
		{"HandshakeTimeout", int64(c.HandshakeTimeout)},
		{"WriteTimeout", int64(c.WriteTimeout)},
		{"KeepaliveInterval", int64(c.KeepaliveInterval)},
		{"IdleTimeout", int64(c.IdleTimeout)},
	} {
		if f.v <= 0 {
			return fmt.Errorf("peer config: %s must be positive, not %d", f.name, f.v)
		}
	}
	switch {
	case c.ID < 0 || int64(c.ID) > int64(^uint32(0)):
		return fmt.Errorf("peer config: node id %d is out of range [0, %d]", c.ID, ^uint32(0))
	case c.Listen == "":
		return errors.New("peer config: Listen address is empty")
	case c.ClusterID == 0:
		return errors.New("peer config: ClusterID must not be zero")
	case c.FrameBytesMax > frameBytesLimit:
		return fmt.Errorf("peer config: FrameBytesMax %d is over the %d-byte limit of the wire format", c.FrameBytesMax, frameBytesLimit)
	case c.QueueBytesMax < c.FrameBytesMax:
		// push relies on this: an empty queue takes any message Send lets through.
		return fmt.Errorf("peer config: QueueBytesMax %d is less than FrameBytesMax %d", c.QueueBytesMax, c.FrameBytesMax)
	case c.DialBackoffMax < c.DialBackoffMin:
		return fmt.Errorf("peer config: DialBackoffMax %v is less than DialBackoffMin %v", c.DialBackoffMax, c.DialBackoffMin)
	case len(c.Secret) > core.AuthSecretBytesMax:
		return fmt.Errorf("peer config: Secret is %d bytes; the limit is %d", len(c.Secret), core.AuthSecretBytesMax)
	case c.IdleTimeout < 3*c.KeepaliveInterval:
		return fmt.Errorf("peer config: IdleTimeout %v must be at least three times KeepaliveInterval %v", c.IdleTimeout, c.KeepaliveInterval)
	case c.TLS != nil && c.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
		// Else anyone could dial in with no certificate at all.
		return errors.New("peer config: TLS must require and verify the dialer's certificate (ClientAuth: tls.RequireAndVerifyClientCert)")
	case c.TLS != nil && (c.TLS.RootCAs == nil || c.TLS.ClientCAs == nil || c.TLS.InsecureSkipVerify):
		// nil pools fall back to the system's authorities, which sign
		// certificates for anyone's hosts.
		return errors.New("peer config: TLS must name the cluster's authorities (RootCAs and ClientCAs) and verify with them (not InsecureSkipVerify)")
	}
	addrs := map[string]core.NodeID{c.Listen: c.ID}
	for _, id := range slices.Sorted(maps.Keys(c.Peers)) {
		addr := c.Peers[id]
		switch {
		case id == c.ID:
			return fmt.Errorf("peer config: node %d lists itself among its peers", id)
		case id < 0 || int64(id) > int64(^uint32(0)):
			return fmt.Errorf("peer config: peer id %d is out of range [0, %d]", id, ^uint32(0))
		case addr == "":
			return fmt.Errorf("peer config: peer %d has an empty address", id)
		}
		if other, dup := addrs[addr]; dup {
			return fmt.Errorf("peer config: nodes %d and %d share the address %s", other, id, addr)
		}
		addrs[addr] = id
	}
	return nil
}

const (
	// handshakesMax bounds accepted connections that have not yet sent a
	// valid hello; more are closed at once. Peers reconnect one at a time,
	// so only strays and scanners ever reach it.
	handshakesMax = 16
	// peerWriteBufBytes is the sender's buffer: messages queued together
	// leave in one write of up to this much.
	peerWriteBufBytes = 64 << 10
	// peerReadBufBytes is an accepted connection's read buffer.
	peerReadBufBytes = 64 << 10
	// drainBytesMax bounds what a sender writes between flushes even when
	// the queue never empties, so that Sent keeps up under sustained load.
	drainBytesMax = 1 << 20
	// ioChunkBytes is the most one read or write of a large payload moves
	// under one deadline, so that the timeouts bound a stall, not the
	// time a large message takes to cross.
	ioChunkBytes = 1 << 20
	// logIntervalMin is how often one kind of line may be logged.
	logIntervalMin = 10 * time.Second
)

// peer is one other node: its queue, its sender's state and its counters.
type peer struct {
	p    *Peers
	id   core.NodeID
	addr string

	mu     sync.Mutex
	ring   [][]byte // queued messages, oldest at head
	head   int
	n      int
	bytes  int
	closed bool
	// notify has room for one token: "the queue may have messages". Send
	// never blocks on it, and the sender looks at the queue after taking it.
	notify chan struct{}
	// back has room for one token: "the peer connected to us", which ends
	// a dial backoff at once: a peer that restarted was redialled only
	// when the backoff ran out, up to DialBackoffMax later, and its
	// messages to us arrived while ours to it waited (found measuring a
	// hand-over to a node restarted a moment before: it stepped down,
	// hearing no one, and the cluster waited for an election).
	back chan struct{}

	// wmu is held by whoever writes to the connection: the sender, from
	// taking messages off the queue until it has flushed them, or Send,
	// which writes a message itself when the socket is free (see
	// sendInline). Handing each message to the sender costs a wake-up of
	// its goroutine, and often of a thread, on the path of every append
	// and acknowledgement; on a loaded 2-core machine that was a good part
	// of a follower's CPU time per append.
	wmu sync.Mutex
	// live is the connection the sender serves, nil between connections;
	// frameMax is the peer's frame limit on it. Both under wmu.
	live     syscall.RawConn
	frameMax int
	// tls is the pipe under a TLS connection's tls.Conn (then live is its
	// TCP connection's), nil for a plain one. Under wmu.
	tls *tlsPipe
	// pending holds the unwritten end of a message that Send began
	// writing inline and the socket did not take at once; the sender
	// writes it first. pendingMsgs counts the messages in it (0 or 1),
	// or, over TLS, whose records wait in the pipe (tls.out) instead.
	// Both under wmu.
	pending     []byte
	pendingMsgs int
	inlineBuf   []byte // Send's frame buffer, under wmu
	// wroteInline records an inline write since the sender last looked, so
	// that the keepalive stays quiet on a busy link.
	wroteInline atomic.Bool

	connected  atomic.Bool // our connection to the peer is up
	inbound    atomic.Bool // the peer's connection to us is up
	sent       atomic.Uint64
	sentInline atomic.Uint64 // of sent, those Send wrote itself (for the tests)
	dropped    atomic.Uint64
	received   atomic.Uint64
	reconnects atomic.Uint64
}

// PeerStats describes one peer.
type PeerStats struct {
	ID   core.NodeID
	Addr string
	// Connected: this node's connection to the peer is up.
	Connected bool
	// Inbound: the peer's connection to this node is up.
	Inbound bool
	// Queued is the number of messages waiting for the sender.
	Queued int
	// Sent counts messages flushed to the socket.
	Sent uint64
	// Dropped counts messages that will not be sent: pushed out of a full
	// queue, too large, lost in a failed write (some of those may have
	// arrived), or left queued at Close.
	Dropped uint64
	// Received counts messages from the peer handed to deliver.
	Received uint64
	// Reconnects counts connections to the peer made after the first.
	Reconnects uint64
}

// NewPeers checks cfg and prepares the transport; Start or StartOn starts
// it. Messages sent before that are queued.
func NewPeers(cfg PeerConfig) (*Peers, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logf := cfg.Logf
	if logf == nil {
		logf = log.Printf
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Peers{
		cfg:        cfg,
		log:        &logLimiter{out: logf, prefix: "peers: ", last: make(map[string]*logLine)},
		peers:      make(map[core.NodeID]*peer, len(cfg.Peers)),
		ids:        slices.Sorted(maps.Keys(cfg.Peers)),
		ctx:        ctx,
		cancel:     cancel,
		inbound:    make(map[core.NodeID]io.Closer),
		replacedAt: make(map[core.NodeID][]time.Time),
	}
	p.SetSecret(cfg.Secret)
	// The caller's map is copied so that a later change to it does not
	// race with the goroutines.
	p.cfg.Peers = make(map[core.NodeID]string, len(cfg.Peers))
	for id, addr := range cfg.Peers {
		p.cfg.Peers[id] = addr
		p.peers[id] = &peer{
			p:      p,
			id:     id,
			addr:   addr,
			ring:   make([][]byte, cfg.QueueMax),
			notify: make(chan struct{}, 1),
			back:   make(chan struct{}, 1),
		}
	}
	return p, nil
}

// ReadOn has the peers' accepted connections read on h's event loop, where
// it has one that waits in epoll_wait and runs the node (the default; see
// HostConfig.EventLoops), instead of on a goroutine each: a message then
// wakes no goroutine, and runs in the loop's next turn beside the client
// requests that came with it. h must be the host Start delivers to. Call
// it before Start.
func (p *Peers) ReadOn(h *Host) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		panic("realnet: Peers.ReadOn after Start")
	}
	p.loop = h
}

// Start binds cfg.Listen and starts the transport; see StartOn.
func (p *Peers) Start(deliver func(from core.NodeID, msg []byte)) error {
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("realnet: peer listener: %s is already in use (another node or process holds it): %w", p.cfg.Listen, err)
		}
		return fmt.Errorf("realnet: peer listener on %s: %w", p.cfg.Listen, err)
	}
	if err := p.StartOn(ln, deliver); err != nil {
		ln.Close()
		return err
	}
	return nil
}

// StartOn starts the transport on a listener the caller bound: it accepts
// peers' connections and starts one sender per peer. deliver is called with
// each message from a peer, on that peer's connection goroutine, and owns
// msg. It may block for a while, which holds up that peer's messages only;
// it must return once the caller stops, because Close waits for it. Once
// started, Peers owns ln and closes it; on an error ln is left to the caller.
func (p *Peers) StartOn(ln net.Listener, deliver func(from core.NodeID, msg []byte)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case deliver == nil:
		return errors.New("realnet: Peers started with a nil deliver func")
	case p.closed:
		return errors.New("realnet: Peers started after Close")
	case p.started:
		return errors.New("realnet: Peers started twice")
	}
	p.started = true
	p.ln = ln
	p.deliver = deliver
	p.wg.Add(2 + len(p.ids))
	go p.acceptLoop(ln)
	go p.logFlushLoop()
	for _, id := range p.ids {
		go p.peers[id].sendLoop()
	}
	return nil
}

// Addr is the listener's address, or nil before Start.
func (p *Peers) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Close stops accepting, closes every connection, drops what is queued and
// waits for every goroutine, including deliver calls in progress. Sends
// after Close are dropped. It may be called more than once.
func (p *Peers) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel() // closes every connection through its AfterFunc
		if p.ln != nil {
			p.ln.Close()
		}
	}
	p.mu.Unlock()
	for _, id := range p.ids {
		p.peers[id].closeQueue()
	}
	p.wg.Wait()
	return nil
}

// Send queues msg for the peer and returns at once; it implements
// core.Network. Peers owns msg from here on: the caller must not change it.
// A message to an unknown node, an empty one (the empty frame is the
// keepalive) or one over FrameBytesMax is dropped and logged: each is a bug
// in the caller.
func (p *Peers) Send(to core.NodeID, msg []byte) {
	pr := p.peers[to]
	switch {
	case pr == nil:
		p.log.logf("send-unknown", "peers: dropped a message to node %d, which is not a peer of node %d", to, p.cfg.ID)
	case len(msg) == 0:
		pr.dropped.Add(1)
		p.log.logf(fmt.Sprintf("send-empty %d", to), "peers: dropped an empty message to peer %d", to)
	case len(msg) > p.cfg.FrameBytesMax:
		pr.dropped.Add(1)
		p.log.logf(fmt.Sprintf("send-large %d", to), "peers: dropped a %d-byte message to peer %d: over FrameBytesMax %d", len(msg), to, p.cfg.FrameBytesMax)
	default:
		if !pr.sendInline(msg) {
			pr.push(msg)
		}
	}
}

// inlineFrameBytesMax bounds a message Send writes itself; a larger one
// (a snapshot chunk) goes through the queue, where the sender writes it in
// chunks under its deadline rather than copying it on the node's turn.
const inlineFrameBytesMax = 64 << 10

// sendInline writes msg to the connection from the calling goroutine when
// the link is up, nothing is queued or being written before it, and the
// socket takes it without blocking. It never blocks: the socket is tried
// once. If the socket takes part of the frame, the rest is left for the
// sender (and msg counts as taken); if it takes nothing, or anything is in
// the way, it reports false and the caller queues msg, keeping the order
// of the messages.
func (pr *peer) sendInline(msg []byte) bool {
	if len(msg) > inlineFrameBytesMax || !pr.wmu.TryLock() {
		return false
	}
	defer pr.wmu.Unlock()
	if pr.live == nil || len(pr.pending) > 0 || len(msg) > pr.frameMax {
		return false
	}
	pr.mu.Lock()
	free := pr.n == 0 && !pr.closed
	pr.mu.Unlock()
	if !free {
		return false
	}
	h := frameHeader(msg)
	buf := append(append(pr.inlineBuf[:0], h[:]...), msg...)
	pr.inlineBuf = buf[:0]
	if pr.tls != nil {
		return pr.sendTLSInline(buf)
	}
	n := 0
	_ = pr.live.Write(func(fd uintptr) bool {
		for n < len(buf) {
			m, err := syscall.Write(int(fd), buf[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				break // EAGAIN, or a failure the sender will meet and report
			}
			n += m
		}
		return true // never wait for the socket on the caller's goroutine
	})
	switch {
	case n == len(buf):
		pr.sent.Add(1)
		pr.sentInline.Add(1)
		pr.wroteInline.Store(true)
		return true
	case n == 0:
		return false
	}
	pr.pending = append(pr.pending[:0], buf[n:]...)
	pr.pendingMsgs = 1
	pr.wroteInline.Store(true)
	select {
	case pr.notify <- struct{}{}:
	default:
	}
	return true
}

// Stats reports on every peer, sorted by id.
func (p *Peers) Stats() []PeerStats {
	out := make([]PeerStats, 0, len(p.ids))
	for _, id := range p.ids {
		pr := p.peers[id]
		pr.mu.Lock()
		queued := pr.n
		pr.mu.Unlock()
		out = append(out, PeerStats{
			ID:         id,
			Addr:       pr.addr,
			Connected:  pr.connected.Load(),
			Inbound:    pr.inbound.Load(),
			Queued:     queued,
			Sent:       pr.sent.Load(),
			Dropped:    pr.dropped.Load(),
			Received:   pr.received.Load(),
			Reconnects: pr.reconnects.Load(),
		})
	}
	return out
}

// push queues msg, dropping the oldest queued messages while the queue is
// over either limit.
//
// Oldest, not newest: the newest message carries the node's latest state (its
// term, its commit index, the entries the peer asks for now), while an old
// one is the most likely to be stale, superseded or already retransmitted.
// After an outage especially, a queue of the last messages serves the peer
// better than a queue of the first ones, which ran up against a dead
// connection minutes ago.
func (pr *peer) push(msg []byte) {
	cfg := &pr.p.cfg
	pr.mu.Lock()
	if pr.closed {
		pr.mu.Unlock()
		pr.dropped.Add(1)
		return
	}
	dropped := 0
	for pr.n == len(pr.ring) || pr.bytes+len(msg) > cfg.QueueBytesMax {
		if pr.n == 0 {
			// validate ensures QueueBytesMax >= FrameBytesMax, and Send
			// checks FrameBytesMax, so an empty queue takes any message.
			panic(fmt.Sprintf("realnet: bug: a %d-byte message does not fit an empty queue of %d bytes", len(msg), cfg.QueueBytesMax))
		}
		pr.bytes -= len(pr.ring[pr.head])
		pr.ring[pr.head] = nil
		pr.head = (pr.head + 1) % len(pr.ring)
		pr.n--
		dropped++
	}
	pr.ring[(pr.head+pr.n)%len(pr.ring)] = msg
	pr.n++
	pr.bytes += len(msg)
	pr.mu.Unlock()
	if dropped > 0 {
		pr.dropped.Add(uint64(dropped))
		pr.p.log.logf(fmt.Sprintf("queue-full %d", pr.id),
			"peers: queue to peer %d (%s) is full (%d messages or %d bytes); dropping the oldest", pr.id, pr.addr, cfg.QueueMax, cfg.QueueBytesMax)
	}
	select {
	case pr.notify <- struct{}{}:
	default:
	}
}

// take moves every queued message into dst, oldest first.
func (pr *peer) take(dst [][]byte) [][]byte {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	total := 0
	for i := range pr.n {
		j := (pr.head + i) % len(pr.ring)
		dst = append(dst, pr.ring[j])
		total += len(pr.ring[j])
		pr.ring[j] = nil
	}
	// The byte count decides what push drops; a drift would drop messages
	// that fit, or keep more than the limit.
	if total != pr.bytes {
		panic(fmt.Sprintf("realnet: bug: queue to peer %d holds %d bytes but counts %d", pr.id, total, pr.bytes))
	}
	pr.head, pr.n, pr.bytes = 0, 0, 0
	return dst
}

// closeQueue drops what is queued and every later message.
func (pr *peer) closeQueue() {
	pr.mu.Lock()
	left := pr.n
	clear(pr.ring)
	pr.head, pr.n, pr.bytes = 0, 0, 0
	pr.closed = true
	pr.mu.Unlock()
	pr.dropped.Add(uint64(left))
}

// sendLoop keeps a connection to the peer and writes its queue into it.
func (pr *peer) sendLoop() {
	p := pr.p
	defer p.wg.Done()
	cfg := &p.cfg
	backoff := cfg.DialBackoffMin
	connects := 0
	for {
		nc, detach, peerFrameMax, err := pr.dial()
		if err == nil {
			connects++
			if connects > 1 {
				pr.reconnects.Add(1)
			}
			p.log.out("peers: connected to peer %d (%s)", pr.id, pr.addr)
			pr.connected.Store(true)
			began := time.Now()
			err = pr.serve(nc, peerFrameMax)
			pr.connected.Store(false)
			detach()
			closeNow(nc)
			if p.ctx.Err() != nil {
				return
			}
			p.log.out("peers: connection to peer %d (%s) lost: %v", pr.id, pr.addr, err)
			// A connection that lasted is a healthy link that broke:
			// retry soon. One that broke at once (say, the peer
			// closes every connection) keeps backing off.
			if time.Since(began) >= cfg.DialBackoffMax {
				backoff = cfg.DialBackoffMin
			}
		} else {
			if p.ctx.Err() != nil {
				return
			}
			p.log.logf(fmt.Sprintf("dial %d", pr.id), "peers: cannot connect to peer %d (%s), retrying with backoff up to %v: %v",
				pr.id, pr.addr, cfg.DialBackoffMax, err)
		}
		// A token left from an earlier connection of the peer's costs one
		// dial at once, no more: the backoff goes on from there.
		woken, ok := p.sleepOrBack(jitter(backoff), pr.back)
		if !ok {
			return
		}
		if woken {
			backoff = cfg.DialBackoffMin // it is back: dial now
			continue
		}
		backoff = min(2*backoff, cfg.DialBackoffMax)
	}
}

// jitter spreads d over [d/2, d], so that nodes that lost a peer together
// do not all redial it in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// sleepOrBack waits d, or until back has a token (woken), or reports
// false if Close came first.
func (p *Peers) sleepOrBack(d time.Duration, back <-chan struct{}) (woken, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false, true
	case <-back:
		return true, true
	case <-p.ctx.Done():
		return false, false
	}
}

// sleep waits d, or reports false if Close came first.
func (p *Peers) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// dial connects to the peer and exchanges hellos. It returns the connection,
// a func that detaches it from Close (call it before closing the connection
// yourself), and the peer's frame limit.
func (pr *peer) dial() (_ net.Conn, detach func() bool, peerFrameMax int, _ error) {
	p := pr.p
	cfg := &p.cfg
	d := net.Dialer{Timeout: cfg.DialTimeout}
	tcp, err := d.DialContext(p.ctx, "tcp", pr.addr)
	if err != nil {
		return nil, nil, 0, err
	}
	// Closing the TCP connection ends a TLS one too, and never waits to
	// send TLS's closing alert.
	detach = context.AfterFunc(p.ctx, func() { tcp.Close() })
	fail := func(err error) (net.Conn, func() bool, int, error) {
		detach()
		tcp.Close()
		return nil, nil, 0, err
	}
	tcp.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	nc := tcp
	if cfg.TLS != nil {
		if nc, err = p.tlsDial(tcp, pr.addr); err != nil {
			p.tlsHandshakeFailed(err)
			return fail(err)
		}
	}
	key := p.handshakeKey()
	version := helloVersionFor(key)
	var t peerTranscript
	t.helloD = (&hello{
		version:       version,
		kind:          helloDial,
		clusterID:     cfg.ClusterID,
		from:          uint32(cfg.ID),
		to:            uint32(pr.id),
		frameBytesMax: uint32(cfg.FrameBytesMax),
	}).encode()
	out := t.helloD[:]
	if key != nil {
		t.nonceD = newNonce()
		out = append(out[:len(out):len(out)], t.nonceD[:]...)
	}
	if _, err := nc.Write(out); err != nil {
		return fail(fmt.Errorf("sending hello: %w", err))
	}
	if _, err := io.ReadFull(nc, t.helloA[:]); err != nil {
		return fail(fmt.Errorf("waiting for the peer's hello: %w", err))
	}
	in, err := decodeHello(&t.helloA)
	if err != nil {
		return fail(err)
	}
	// Ids in hex, as the serving line and the data directory's refusal
	// print them.
	them := fmt.Sprintf("node %d of %s %016x (version %d)", in.from, cfg.group(), in.clusterID, in.version)
	switch {
	case in.kind != helloAccept:
		return fail(fmt.Errorf("%s answered with hello kind %d", them, in.kind))
	case in.status != helloOK:
		return fail(fmt.Errorf("refused by %s: %v", them, refusal{in.status, cfg.group()}))
	case in.version != version:
		return fail(fmt.Errorf("%s speaks another protocol version than %d", them, version))
	case in.clusterID != cfg.ClusterID:
		return fail(fmt.Errorf("reached %s, not %s %016x", them, cfg.group(), cfg.ClusterID))
	case in.from != uint32(pr.id):
		return fail(fmt.Errorf("reached %s, not node %d: check the peer addresses", them, pr.id))
	case in.to != uint32(cfg.ID):
		return fail(fmt.Errorf("%s answered node %d, not us (%d)", them, in.to, cfg.ID))
	case in.frameBytesMax == 0:
		return fail(fmt.Errorf("%s announced a frame limit of 0", them))
	}
	if key != nil {
		if err := dialProof(nc, key, &t); err != nil {
			return fail(fmt.Errorf("%s: %w", them, err))
		}
	}
	nc.SetDeadline(time.Time{})
	return nc, detach, int(in.frameBytesMax), nil
}

var errPeerClosed = errors.New("the peer closed the connection")

// serve writes the queue into nc until a write fails, the peer closes the
// connection or Close is called.
func (pr *peer) serve(nc net.Conn, peerFrameMax int) error {
	p := pr.p
	cfg := &p.cfg
	gone := make(chan error, 1)
	p.wg.Add(1)
	go pr.watch(nc, gone)

	bw := bufio.NewWriterSize(deadlineWriter{nc: nc, timeout: cfg.WriteTimeout}, peerWriteBufBytes)
	keepalive := time.NewTicker(cfg.KeepaliveInterval)
	defer keepalive.Stop()
	pr.wmu.Lock()
	pr.live, pr.frameMax, pr.tls = nil, peerFrameMax, nil
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		if pipe, ok := tc.NetConn().(*tlsPipe); ok {
			raw, pr.tls = pipe.Conn, pipe
		}
	}
	if sc, ok := raw.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pr.live = rc
		}
	}
	pr.wmu.Unlock()
	defer func() {
		// What Send left half-written dies with the connection.
		pr.wmu.Lock()
		pr.live, pr.tls = nil, nil
		pr.dropped.Add(uint64(pr.pendingMsgs))
		pr.pending, pr.pendingMsgs = pr.pending[:0], 0
		pr.wmu.Unlock()
	}()
	var batch [][]byte
	wrote := false // since the last keepalive tick
	for {
		didWrite, err := pr.drain(bw, &batch, peerFrameMax)
		if err != nil {
			return err
		}
		wrote = wrote || didWrite || pr.wroteInline.Swap(false)
		select {
		case <-pr.notify:
		case err := <-gone:
			if err == nil || errors.Is(err, io.EOF) {
				return errPeerClosed
			}
			return err
		case <-p.ctx.Done():
			return p.ctx.Err()
		case <-keepalive.C:
			if !wrote && !pr.wroteInline.Swap(false) {
				if err := pr.keepalive(bw); err != nil {
					return fmt.Errorf("writing a keepalive: %w", err)
				}
			}
			wrote = false
		}
	}
}

// sendTLSInline is sendInline's write over TLS: the frame is encrypted into
// the pipe and as much as the socket takes is written to it; the rest waits
// in the pipe, ahead of anything the sender writes next (tlsPipe.forward),
// and the sender is woken to write it. Once encrypted, the frame is taken
// whatever the socket did: TLS has numbered its records.
func (pr *peer) sendTLSInline(frame []byte) bool {
	p := pr.tls
	if pr.pendingMsgs > 0 || p.outLen() > 0 {
		return false // the end of an earlier one waits: queue behind it
	}
	if !p.capture(frame) {
		return false // TLS failed: the sender meets it and reconnects
	}
	_ = pr.live.Write(func(fd uintptr) bool {
		p.send(func(b []byte) (int, bool) { return sendSocketNow(int(fd), b, nil) })
		return true // never wait for the socket on the caller's goroutine
	})
	pr.wroteInline.Store(true)
	if p.outLen() == 0 {
		pr.sent.Add(1)
		pr.sentInline.Add(1)
		return true
	}
	// Sent once the sender has written the rest (drain), dropped if the
	// connection ends first: counted once, as over a plain connection.
	pr.pendingMsgs = 1
	select {
	case pr.notify <- struct{}{}:
	default:
	}
	return true
}

// keepalive writes an empty frame, unless Send left the end of a message
// half-written (the next drain writes it; a keepalive in its middle would
// corrupt the stream).
func (pr *peer) keepalive(bw *bufio.Writer) error {
	pr.wmu.Lock()
	defer pr.wmu.Unlock()
	if len(pr.pending) > 0 {
		return nil
	}
	h := frameHeader(nil)
	if _, err := bw.Write(h[:]); err != nil {
		return err
	}
	return bw.Flush()
}

// drain writes what Send left half-written, then queued messages, taking
// more as they come, and flushes once the queue is empty or drainBytesMax
// has been written (then it leaves a token in notify, so that serve comes
// straight back). It holds wmu throughout, so that Send writes nothing in
// between. It reports whether it wrote anything.
func (pr *peer) drain(bw *bufio.Writer, batch *[][]byte, peerFrameMax int) (bool, error) {
	p := pr.p
	pr.wmu.Lock()
	defer pr.wmu.Unlock()
	unflushed, written, taken := 0, 0, 0
	if pr.tls != nil && (pr.pendingMsgs > 0 || pr.tls.outLen() > 0) {
		// What sendTLSInline left: its records go first, under the
		// write deadline. (A keepalive may have written them already;
		// the message is counted here.) A failed write leaves them in
		// the pipe, so the message is counted as dropped here, not again
		// by serve.
		pr.tls.Conn.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
		err := pr.tls.flushOut()
		msgs := uint64(pr.pendingMsgs)
		pr.pendingMsgs = 0
		if err != nil {
			pr.dropped.Add(msgs)
			return true, err
		}
		pr.sent.Add(msgs)
	}
	if len(pr.pending) > 0 {
		_, err := bw.Write(pr.pending)
		unflushed, written = pr.pendingMsgs, len(pr.pending)
		pr.pending, pr.pendingMsgs = pr.pending[:0], 0
		if err != nil {
			pr.dropped.Add(uint64(unflushed))
			return true, err
		}
	}
	for written < drainBytesMax {
		b := pr.take((*batch)[:0])
		*batch = b
		if len(b) == 0 {
			break
		}
		taken += len(b)
		for i, msg := range b {
			if len(msg) > peerFrameMax {
				pr.dropped.Add(1)
				p.log.logf(fmt.Sprintf("peer-frame-max %d", pr.id),
					"peers: dropped a %d-byte message to peer %d: over the peer's frame limit of %d bytes", len(msg), pr.id, peerFrameMax)
				continue
			}
			h := frameHeader(msg)
			_, err := bw.Write(h[:])
			if err == nil {
				_, err = bw.Write(msg)
			}
			if err != nil {
				pr.dropped.Add(uint64(unflushed + len(b) - i))
				clear(b)
				return true, err
			}
			unflushed++
			written += len(h) + len(msg)
		}
		// The queue no longer holds them; neither should the batch, or
		// a large message would stay alive until the next one.
		clear(b)
	}
	if taken == 0 && unflushed == 0 {
		return false, nil
	}
	if err := bw.Flush(); err != nil {
		pr.dropped.Add(uint64(unflushed))
		return true, err
	}
	pr.sent.Add(uint64(unflushed))
	if written >= drainBytesMax {
		select {
		case pr.notify <- struct{}{}:
		default:
		}
	}
	return true, nil
}

// watch waits for the acceptor to close nc; the acceptor never writes after
// its hello, so any return of Read means the connection is over.
func (pr *peer) watch(nc net.Conn, gone chan<- error) {
	defer pr.p.wg.Done()
	var b [1]byte
	n, err := nc.Read(b[:])
	if n > 0 {
		err = errors.New("the peer wrote on a one-way connection")
		nc.Close()
	}
	gone <- err
}

// deadlineWriter writes in chunks of at most ioChunkBytes, each under its own
// deadline: a write fails when the peer takes nothing for timeout, however
// large the message.
type deadlineWriter struct {
	nc      net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		chunk := b[n:min(len(b), n+ioChunkBytes)]
		w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
		m, err := w.nc.Write(chunk)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// acceptLoop hands each accepted connection to a goroutine of its own until
// the listener closes.
func (p *Peers) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry
			// rather than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.logf("accept", "peers: accept failed (retrying in %v): %v", backoff, err)
			if !p.sleep(backoff) {
				return
			}
			continue
		}
		backoff = 0
		p.mu.Lock()
		if p.closed || p.handshakes >= handshakesMax {
			closed := p.closed
			p.mu.Unlock()
			nc.Close()
			if !closed {
				p.log.logf("handshakes-max", "peers: closed a connection from %s: %d connections are already in their handshake", nc.RemoteAddr(), handshakesMax)
			}
			continue
		}
		p.handshakes++
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serveInbound(nc)
	}
}

// serveInbound checks a dialer's hello, then reads its frames.
func (p *Peers) serveInbound(nc net.Conn) {
	defer p.wg.Done()
	tcp := nc
	detach := context.AfterFunc(p.ctx, func() { tcp.Close() })
	defer detach()
	defer nc.Close()
	if p.cfg.TLS != nil {
		// The frames then go through TLS. Its tls.Conn sits on a pipe,
		// which goes on to the TCP connection until the loop that
		// adoptFrames hands it to reads the socket itself (tlspipe.go);
		// without such a loop, readFrames reads them through it. Closing
		// the TCP connection (above) ends either.
		nc = net.Conn(tls.Server(newTLSPipe(nc), p.cfg.TLS))
	}

	pr, err := p.acceptHello(nc)
	p.mu.Lock()
	p.handshakes--
	p.mu.Unlock()
	if err != nil {
		p.tlsHandshakeFailed(err)
		if p.ctx.Err() == nil {
			p.log.logf("refuse "+errorKind(err), "peers: refused a connection from %s: %v", nc.RemoteAddr(), err)
		}
		return
	}
	select {
	case pr.back <- struct{}{}: // it is up: a sender in backoff dials now
	default:
	}
	if p.loop != nil {
		fs, err := p.loop.adoptFrames(nc, p.cfg.FrameBytesMax, p.cfg.IdleTimeout, func(msg []byte) {
			if p.ctx.Err() == nil {
				pr.received.Add(1)
				p.deliver(pr.id, msg)
			}
		}, p.ctx.Done())
		if err != nil {
			p.log.logf("adopt "+errorKind(err), "peers: cannot read the connection from peer %d (%s): %v", pr.id, nc.RemoteAddr(), err)
			return
		}
		if fs != nil {
			p.serveOnLoop(pr, nc.RemoteAddr(), fs)
			return
		}
	}
	if !p.register(pr, nc, nc.RemoteAddr()) {
		return
	}
	defer p.unregister(pr, nc)
	p.inboundEnded(pr, nc.RemoteAddr(), p.readFrames(pr, nc))
}

// inboundEnded logs why the connection from pr, at addr, ended. net.
// ErrClosed is this side's own doing: Close, or a newer connection from the
// peer that register logged.
func (p *Peers) inboundEnded(pr *peer, addr net.Addr, err error) {
	if p.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		p.log.logf(fmt.Sprintf("inbound %d %s", pr.id, errorKind(err)),
			"peers: connection from peer %d (%s) closed: %v", pr.id, addr, err)
	}
}

// serveOnLoop waits while a loop reads the frames of the connection from
// pr, whose remote address is addr.
func (p *Peers) serveOnLoop(pr *peer, addr net.Addr, fs frameStream) {
	if !p.register(pr, fs, addr) {
		fs.Close()
		fs.Wait()
		return
	}
	defer p.unregister(pr, fs)
	stop := context.AfterFunc(p.ctx, func() { fs.Close() })
	defer stop()
	p.inboundEnded(pr, addr, fs.Wait())
}

// refusal is why an acceptor refused a hello; its status keys the log line.
type refusal struct {
	status uint8
	group  string // "cluster" or "mesh" (PeerConfig.group)
}

func (r refusal) Error() string {
	if r.status == helloWrongCluster && r.group != "" {
		return "wrong " + r.group + " id"
	}
	return helloStatusText(r.status)
}

// group is what the log lines call the group: Group, or "cluster".
func (c *PeerConfig) group() string {
	if c.Group == "" {
		return "cluster"
	}
	return c.Group
}

// acceptHello reads the dialer's hello, judges it and answers.
func (p *Peers) acceptHello(nc net.Conn) (*peer, error) {
	cfg := &p.cfg
	nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	if tc, ok := nc.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("%w: %w", errTLSHandshake, err)
		}
	}
	var t peerTranscript
	if _, err := io.ReadFull(nc, t.helloD[:1]); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoHello, err)
	}
	if answer := clientAtPeerPort(t.helloD[0]); answer != "" {
		nc.Write([]byte(answer))
		return nil, errClientAtPeerPort
	}
	if _, err := io.ReadFull(nc, t.helloD[1:]); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoHello, err)
	}
	in, err := decodeHello(&t.helloD)
	if err != nil {
		return nil, err // not one of ours: no answer
	}
	if in.kind != helloDial || in.frameBytesMax == 0 {
		return nil, errHelloMalformed
	}
	if in.version == helloVersionAuth {
		// The dialer's nonce follows its hello, whatever becomes of it.
		if _, err := io.ReadFull(nc, t.nonceD[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", errNoHello, err)
		}
	}
	key := p.handshakeKey()
	version := helloVersionFor(key)
	pr := p.peers[core.NodeID(in.from)]
	var status uint8
	switch {
	case in.version == helloVersion && version == helloVersionAuth:
		status = helloAuthRequired
	case in.version == helloVersionAuth && version == helloVersion:
		status = helloAuthUnknown
	case in.version != version:
		status = helloBadVersion
	case in.clusterID != cfg.ClusterID:
		status = helloWrongCluster
	case in.from == uint32(cfg.ID):
		// Checked before the receiver: a node whose peer list points at
		// itself should be told so, not that it reached another node.
		status = helloFromSelf
	case in.to != uint32(cfg.ID):
		status = helloWrongReceiver
	case pr == nil:
		status = helloUnknownSender
	case !certNamesPeer(nc, pr.addr):
		status = helloCertNotSender
	}
	t.helloA = (&hello{
		version:       version,
		kind:          helloAccept,
		status:        status,
		clusterID:     cfg.ClusterID,
		from:          uint32(cfg.ID),
		to:            in.from,
		frameBytesMax: uint32(cfg.FrameBytesMax),
	}).encode()
	_, werr := nc.Write(t.helloA[:])
	claims := func(err error) error {
		// The claimed identity goes to the log line only, after the key.
		return fmt.Errorf("%w (it claims node %d of %s %016x, version %d, for node %d)", err, in.from, cfg.group(), in.clusterID, in.version, in.to)
	}
	if status != helloOK {
		return nil, claims(refusal{status, cfg.group()})
	}
	if werr != nil {
		return nil, fmt.Errorf("answering the hello of peer %d: %w", in.from, werr)
	}
	if key != nil {
		if err := acceptProof(nc, key, &t); err != nil {
			return nil, claims(err)
		}
	}
	nc.SetDeadline(time.Time{})
	return pr, nil
}

// register makes nc, from addr, the peer's accepted connection, closing the
// one it replaces: the peer dialled again, so it has given the old one up.
func (p *Peers) register(pr *peer, nc io.Closer, addr net.Addr) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	old := p.inbound[pr.id]
	p.inbound[pr.id] = nc
	pr.inbound.Store(true)
	twins := 0
	if old != nil {
		twins = p.noteReplaced(pr.id, time.Now())
	}
	p.mu.Unlock()
	if old != nil {
		old.Close()
		p.log.logf(fmt.Sprintf("replaced %d", pr.id), "peers: peer %d connected again from %s; closed its previous connection", pr.id, addr)
	}
	if twins > 0 {
		p.log.logf(fmt.Sprintf("twins %d", pr.id), "peers: peer %d's connections replace each other, %d times in %v, each while the one before was open (last from %s): "+
			"two processes may be running as node %d (the same --node-id on two machines or data directories), and each would vote: "+
			"stop the one that should not run", pr.id, twins, twinWindow, addr, pr.id)
	}
	return true
}

// A process that restarts dials again once its old connection is gone: the
// kernel closed it when the process died, and the accepted side has seen
// its end, so the new connection replaces nothing. Two processes that claim
// one node id (an operator's slip: the same --node-id, on another machine
// or data directory, where the lock file cannot see it) each dial, and
// each connection replaces the other's, still open, again and again; every
// node then counts both processes' votes as one node's. The transport
// cannot tell which is the node, so it says so loudly (found by review:
// the only sign was a rate-limited line that a peer connected again).
const (
	twinReplacementsMin = 3
	twinWindow          = 10 * time.Second
	// twinTimesMax bounds the times kept a peer.
	twinTimesMax = 64
)

// noteReplaced records that peer id's open accepted connection was
// replaced at now, and returns how many times that happened within
// twinWindow when it is twinReplacementsMin or more, else 0. The caller
// holds p.mu.
func (p *Peers) noteReplaced(id core.NodeID, now time.Time) int {
	times := p.replacedAt[id]
	i := 0
	for i < len(times) && now.Sub(times[i]) > twinWindow {
		i++
	}
	times = append(times[i:], now)
	if len(times) > twinTimesMax {
		times = times[len(times)-twinTimesMax:]
	}
	p.replacedAt[id] = times
	if len(times) >= twinReplacementsMin {
		return len(times)
	}
	return 0
}

func (p *Peers) unregister(pr *peer, nc io.Closer) {
	p.mu.Lock()
	if p.inbound[pr.id] == nc {
		delete(p.inbound, pr.id)
		pr.inbound.Store(false)
	}
	p.mu.Unlock()
}

var (
	errFrameChecksum  = errors.New("frame checksum mismatch")
	errFrameTooLarge  = errors.New("frame too large")
	errNoHello        = errors.New("no hello")
	errHelloMalformed = errors.New("malformed hello")
	// errClientAtPeerPort: the connection began as a client's request
	// does (clientAtPeerPort), and was answered so.
	errClientAtPeerPort = errors.New("a client's request, not a peer's hello")
)

// peerPortMessage is what a client that dials the replication port by
// mistake is told (kv --port 9100, redis-cli -p 9100): it used to wait
// out the handshake timeout and find the connection closed without a word
// (found by review).
const peerPortMessage = "this is a dkv node's replication port, for its peers; clients connect to the node's client port (its --port, or --kv-port in a cluster or mesh)"

// clientAtPeerPort is the answer to a connection whose first byte is
// first, when that is how a client's request begins, in its protocol: a
// JSON line ('{') or RESP (an array '*', or an inline command's letter);
// "" for anything else, a peer's hello among it (its magic begins with
// 'd', which no command of RESP's does).
func clientAtPeerPort(first byte) string {
	switch {
	case first == '{':
		return `{"ok":false,"error":{"code":"bad_request","message":"` + peerPortMessage + `"}}` + "\n"
	case first == '*' || 'A' <= first && first <= 'Z' || 'a' <= first && first <= 'z' && first != byte(helloMagic&0xff):
		return "-ERR " + peerPortMessage + "\r\n"
	}
	return ""
}

// errorKind names the kind of a connection's failure, to key its log line:
// the error's text holds addresses and sizes, which would make every line
// a kind of its own.
func errorKind(err error) string {
	var r refusal
	var ne net.Error
	switch {
	case errors.As(err, &r):
		return fmt.Sprintf("refusal %d", r.status)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	for _, kind := range []error{errFrameChecksum, errFrameTooLarge, errNoHello, errClientAtPeerPort, errTLSHandshake, errHelloMalformed,
		errHelloMagic, errHelloChecksum, io.ErrUnexpectedEOF, io.EOF, net.ErrClosed} {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return "other"
}

// readFrames delivers each frame from nc until it fails.
func (p *Peers) readFrames(pr *peer, nc net.Conn) error {
	cfg := &p.cfg
	br := bufio.NewReaderSize(nc, peerReadBufBytes)
	var h [frameHeaderBytes]byte
	for {
		nc.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return err
		}
		n := binary.LittleEndian.Uint32(h[0:])
		if uint64(n) > uint64(cfg.FrameBytesMax) {
			return fmt.Errorf("%w: %d bytes, over FrameBytesMax %d", errFrameTooLarge, n, cfg.FrameBytesMax)
		}
		msg, err := readPayload(br, nc, int(n), cfg.IdleTimeout)
		if err != nil {
			return err
		}
		if frameChecksum(h[0:4], msg) != binary.LittleEndian.Uint32(h[4:]) {
			return errFrameChecksum
		}
		if n == 0 {
			continue // a keepalive
		}
		if p.ctx.Err() != nil {
			return p.ctx.Err()
		}
		pr.received.Add(1)
		p.deliver(pr.id, msg)
	}
}

// readPayload reads n bytes into a new slice, which deliver will own. A
// large one is read in chunks under their own deadlines, and the slice grows
// as the bytes arrive, so a peer that announces a large frame and stalls
// holds no more memory than it sent.
func readPayload(br *bufio.Reader, nc net.Conn, n int, timeout time.Duration) ([]byte, error) {
	msg := make([]byte, 0, min(n, ioChunkBytes))
	for len(msg) < n {
		k := min(n-len(msg), ioChunkBytes)
		msg = slices.Grow(msg, k)
		nc.SetReadDeadline(time.Now().Add(timeout))
		m, err := io.ReadFull(br, msg[len(msg):len(msg)+k])
		msg = msg[:len(msg)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the frame was cut short
			}
			return nil, err
		}
	}
	return msg, nil
}

// logFlushLoop writes the counts of the lines held back whose interval
// has ended (logLimiter.flushDue), until Close: within a tenth of the
// interval of its end.
func (p *Peers) logFlushLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(p.log.interval() / 10)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-tick.C:
			p.log.flushDue(now)
		}
	}
}

// logLimiter writes a line of each kind (its key) at most every
// logIntervalMin, and says how many it held back: a peer that is down for
// an hour, or a node that keeps sending what it must not, gets a line now
// and then instead of one per attempt.
//
// The count of the lines held back goes out with the kind's next line or,
// if none comes, once the interval has ended (flushDue): a flood that
// stopped left its count unsaid. flushDue runs on goroutines the owner
// already has and waits for at its Close (Peers' logFlushLoop, and every
// logf call of the limiter), never on a timer's goroutine of its own: one
// outlived its owner and wrote into a log that had been handed back (a
// test's, after the test; the race detector caught it in CI).
type logLimiter struct {
	out func(format string, args ...any)
	// prefix starts flushDue's lines, as it does the owner's.
	prefix string
	mu     sync.Mutex
	last   map[string]*logLine
	// every is the interval (0: logIntervalMin; tests shorten it). Set
	// before the first line.
	every time.Duration
	// due is when the earliest count held back is to be written; zero
	// when none is held back. Under mu.
	due time.Time
}

type logLine struct {
	at         time.Time
	suppressed int
}

// logKeysMax bounds the kinds remembered; past it lines share one budget.
const logKeysMax = 256

func (l *logLimiter) interval() time.Duration {
	if l.every > 0 {
		return l.every
	}
	return logIntervalMin
}

func (l *logLimiter) logf(key, format string, args ...any) {
	now := time.Now()
	l.flushDue(now)
	every := l.interval()
	l.mu.Lock()
	e := l.last[key]
	if e == nil {
		if len(l.last) >= logKeysMax {
			key = "overflow"
			e = l.last[key]
		}
		if e == nil {
			e = &logLine{}
			l.last[key] = e
		}
	}
	if !e.at.IsZero() && now.Sub(e.at) < every {
		e.suppressed++
		if end := e.at.Add(every); l.due.IsZero() || end.Before(l.due) {
			l.due = end
		}
		l.mu.Unlock()
		return
	}
	suppressed := e.suppressed
	e.at, e.suppressed = now, 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if suppressed > 0 {
		msg += fmt.Sprintf(" (and %d more like it since the last such line)", suppressed)
	}
	l.out("%s", msg)
}

// flushDue writes, for each kind whose interval has ended by now with
// lines held back, how many; the kind's next line may then go out at
// once. The caller must be a goroutine its owner waits for at Close.
func (l *logLimiter) flushDue(now time.Time) {
	l.mu.Lock()
	if l.due.IsZero() || now.Before(l.due) {
		l.mu.Unlock()
		return
	}
	every := l.interval()
	type held struct {
		key string
		n   int
	}
	var out []held
	l.due = time.Time{}
	for key, e := range l.last {
		if e.suppressed == 0 {
			continue
		}
		end := e.at.Add(every)
		if now.Before(end) {
			if l.due.IsZero() || end.Before(l.due) {
				l.due = end
			}
			continue
		}
		out = append(out, held{key, e.suppressed})
		// The count is said: the interval is over, and the kind's next
		// line goes out whenever it comes.
		e.suppressed = 0
	}
	l.mu.Unlock()
	// In the order of the kinds, not the map's.
	slices.SortFunc(out, func(a, b held) int { return strings.Compare(a.key, b.key) })
	for _, h := range out {
		l.out("%s%d more lines of the kind %q were held back in the %v after the last one written", l.prefix, h.n, h.key, every)
	}
}

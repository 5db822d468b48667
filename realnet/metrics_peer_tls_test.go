package realnet

import (
	"net"
	"sync/atomic"
	"testing"

	"dkv/core"
)

// peerTLSCount counts the failed peer TLS handshakes a transport reports.
type peerTLSCount struct{ n atomic.Int64 }

func (c *peerTLSCount) PeerTLSHandshakeFailed() { c.n.Add(1) }

// startCountedCluster is startCluster with each transport's failed TLS
// handshakes counted.
func startCountedCluster(t *testing.T, tweak func(*PeerConfig)) ([]*testPeer, []*peerTLSCount) {
	t.Helper()
	lns := []net.Listener{listenLoopback(t), listenLoopback(t)}
	addrs := []string{lns[0].Addr().String(), lns[1].Addr().String()}
	tps := make([]*testPeer, 2)
	counts := make([]*peerTLSCount, 2)
	for i := range tps {
		cfg, l := testPeerConfig(t, core.NodeID(i), addrs)
		tweak(&cfg)
		tps[i] = newTestPeer(t, cfg, l)
		counts[i] = &peerTLSCount{}
		tps[i].SetMetrics(counts[i])
	}
	for i, tp := range tps {
		tp.startOn(t, lns[i])
	}
	return tps, counts
}

// A node whose certificate another authority signed fails its TLS
// handshakes both ways, and both transports count them; nodes of one
// authority count none.
func TestPeerTLSHandshakeFailuresAreCounted(t *testing.T) {
	f := testCerts(t)
	other := testCerts(t)
	noPeerGoroutinesAtEnd(t)
	mine, theirs := withTLS(f, t), withTLS(other, t)
	_, counts := startCountedCluster(t, func(c *PeerConfig) {
		if c.ID == 1 {
			theirs(c)
		} else {
			mine(c)
		}
	})
	// Each dials the other, each refuses the other's certificate: the
	// dialler's handshake fails, and the acceptor's.
	waitFor(t, "failed handshakes counted on both nodes", func() bool {
		return counts[0].n.Load() >= 2 && counts[1].n.Load() >= 2
	})

	tps, counts := startCountedCluster(t, mine)
	for k := range 10 {
		tps[0].Send(1, payload(0, 1, k))
		tps[1].Send(0, payload(1, 0, k))
	}
	waitFor(t, "10 messages each way", func() bool { return tps[0].in.count() == 10 && tps[1].in.count() == 10 })
	if a, b := counts[0].n.Load(), counts[1].n.Load(); a != 0 || b != 0 {
		t.Errorf("nodes of one authority counted %d and %d failed handshakes, want none", a, b)
	}
}

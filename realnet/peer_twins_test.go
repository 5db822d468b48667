package realnet

import (
	"strings"
	"testing"
)

// Two processes that claim one node id (the same --node-id on two
// machines) each keep a connection to every peer, and each one's dial
// replaces the other's, still open: the peer says so as an error. A
// process that restarts, whose old connection has ended first, does not.
func TestTwoProcessesWithOneNodeIDAreReported(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	ln := listenLoopback(t)
	addrs := []string{freeAddr(t), ln.Addr().String()} // node 0 is played by the test
	cfg, l := testPeerConfig(t, 1, addrs)
	tp := newTestPeer(t, cfg, l)
	tp.startOn(t, ln)
	addr := ln.Addr().String()
	registered := func(want bool) {
		t.Helper()
		waitFor(t, "node 0's connection registered or not", func() bool {
			tp.mu.Lock()
			defer tp.mu.Unlock()
			return (tp.inbound[0] != nil) == want
		})
	}

	// Restarts: each connection ends before the next comes.
	for range 2 * twinReplacementsMin {
		nc := rawPeer(t, addr, 0, 1, testClusterID)
		registered(true)
		nc.Close()
		registered(false)
	}
	if strings.Contains(l.String(), "replace each other") {
		t.Fatalf("restarts reported as two processes:\n%s", l.String())
	}

	// Twins: each connection is open when the next replaces it.
	for range twinReplacementsMin + 1 {
		rawPeer(t, addr, 0, 1, testClusterID) // closed by the test's end
		registered(true)
	}
	l.waitFor(t, "peers: peer 0's connections replace each other, 3 times in 10s")
	l.waitFor(t, "two processes may be running as node 0")
}

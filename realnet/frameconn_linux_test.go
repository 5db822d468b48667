package realnet

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPeersOnAnEventLoop runs the tests of the receiving side again with
// the accepted connections read on a host's waiting event loop (ReadOn),
// and checks that the messages are delivered there.
func TestPeersOnAnEventLoop(t *testing.T) {
	waitingProcs(t)
	peersOnLoop = true
	t.Cleanup(func() { peersOnLoop = false })
	t.Run("delivered on the loop", func(t *testing.T) {
		noPeerGoroutinesAtEnd(t)
		tps := startCluster(t, 2, nil)
		var onLoop, off atomic.Int32
		in := tps[1].in
		in.mu.Lock()
		in.onDeliver = func() {
			stack := make([]byte, 64<<10)
			stack = stack[:runtime.Stack(stack, false)]
			if strings.Contains(string(stack), "(*eloop).run") {
				onLoop.Add(1)
			} else {
				off.Add(1)
			}
		}
		in.mu.Unlock()
		for k := range 20 {
			tps[0].Send(1, payload(0, 1, k))
		}
		waitFor(t, "20 messages", func() bool { return in.count() == 20 })
		if onLoop.Load() != 20 || off.Load() != 0 {
			t.Fatalf("%d messages delivered on the loop, %d off it; want all 20 on it", onLoop.Load(), off.Load())
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

package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// The answer to a pull that takes longer than RoundTimeout to arrive (4
// MiB of items over a link slower than about 16 Mbit/s) still brings its
// items. It used to be thrown away whole, as the answer to a round given
// up: the node asked again, the peer sent the same items again, and so on
// for as long as the link stayed that slow, the pulled items never taken
// (found by review). Here the only way in for node 0's items is node 1's
// pulls: node 0's own pushes are lost, and its answers take 3 s.
func TestLatePullAnswerIsTaken(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(3 * time.Second) // the two join
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if from == 0 && to == 1 {
			switch b[0] {
			case mesh.KindReplicate, mesh.KindPush:
				return -1
			case mesh.KindPushAck:
				return 3 * time.Second
			}
		}
		return time.Millisecond
	}
	for i := range 20 {
		w.set(0, fmt.Sprintf("k%d", i), "v")
	}
	w.run(30 * time.Second)
	for i := range 20 {
		if got := w.held(1, fmt.Sprintf("k%d", i)); got == "absent" {
			t.Fatalf("node 1 still lacks k%d after 30 s of pulling it", i)
		}
	}
}

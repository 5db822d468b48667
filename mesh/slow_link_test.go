package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// Two nodes whose anti-entropy summaries take longer than RoundTimeout to
// arrive (a summary of 4,096 keys of 1 KB is 4 MiB: more than 2 s over a
// link slower than about 16 Mbit/s) still converge. Every round used to be
// given up before its summary came, the summary then dropped as the answer
// to a round given up, and the next round given up alike: nothing was ever
// pushed or pulled, for as long as the link stayed that slow (found by
// review). A node that hears from its peer during a round given up now
// waits longer for the next one. Here replicates are lost, so only
// anti-entropy brings the writes.
func TestSlowSummariesStillConverge(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(3 * time.Second) // the two join
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		switch b[0] {
		case mesh.KindReplicate:
			return -1
		case mesh.KindSummary:
			return 3 * time.Second
		}
		return time.Millisecond
	}
	for i := range 20 {
		w.set(0, fmt.Sprintf("a%d", i), "v")
		w.set(1, fmt.Sprintf("b%d", i), "v")
	}
	w.run(60 * time.Second)
	for id := range 2 {
		for i := range 20 {
			for _, k := range []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)} {
				if got := w.held(core.NodeID(id), k); got == "absent" {
					t.Fatalf("node %d still lacks %s after 60 s of anti-entropy over a slow link", id, k)
				}
			}
		}
	}
}

// A peer that is down, and says nothing, is tried again every RoundTimeout
// as before: the wait grows only while the peer is heard from, so a mesh
// that heals after a long partition resumes anti-entropy at once.
func TestSilentPeerIsRetriedEveryRoundTimeout(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(3 * time.Second)
	w.latency = func(from, to core.NodeID, b []byte) time.Duration { return -1 } // a partition
	w.run(60 * time.Second)
	w.latency = nil
	w.set(0, "k", "v")
	w.run(time.Duration(mesh.DefaultConfig(0, []core.NodeID{0, 1}).RoundTimeout) + time.Second)
	// The replicate reached node 1; what shows the round resumed is
	// that node 0's round with node 1 is no longer unreachable.
	if st := w.status(0); st.Peers[0].Unreachable {
		t.Fatalf("node 0 still finds node 1 unreachable a round timeout after the partition healed: %+v", st.Peers[0])
	}
}

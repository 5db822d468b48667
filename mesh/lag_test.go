package mesh_test

import (
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// Status's pass_ago_ms (dkv_mesh_antientropy_lag_seconds) promises that
// what this node held before then, the peer holds. A complete pass proves
// that of what the node held when the pass began, so the lag is timed
// from the pass's start: timed from its end, a slow pass showed almost
// no lag while a write taken during it was still missing on the peer.
func TestPassLagCountsFromThePassStart(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(3 * time.Second) // the two join
	// Node 0's writes do not reach node 1 (neither replicated, nor pushed
	// or pulled), and node 1's summaries take 1.5 s (under the round
	// timeout): each pass of node 0's with node 1 takes that long.
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		switch {
		case from == 0 && to == 1 && (b[0] == mesh.KindReplicate || b[0] == mesh.KindPush || b[0] == mesh.KindPushAck):
			return -1
		case from == 1 && to == 0 && b[0] == mesh.KindSummary:
			return 1500 * time.Millisecond
		}
		return time.Millisecond
	}
	digestAt := int64(-1)
	w.tap = func(m wmsg) {
		if m.from == 0 && m.to == 1 && m.b[0] != mesh.KindReplicate && m.b[0] != mesh.KindPush && digestAt < 0 {
			digestAt = w.clk.now // a round begins: node 0's digest
		}
	}
	passes := w.status(0).Peers[0].Passes
	digestAt = -1
	for i := 0; i < 5000 && digestAt < 0; i++ {
		w.step()
	}
	if digestAt < 0 {
		t.Fatal("node 0 began no round with node 1")
	}
	w.tap = nil
	w.run(500 * time.Millisecond)
	w.set(0, "late", "v") // taken during the round: its digest did not show it
	var st *core.MeshStatus
	for i := 0; i < 5000; i++ {
		if st = w.status(0); st.Peers[0].Passes > passes {
			break
		}
		w.step()
	}
	if st.Peers[0].Passes <= passes {
		t.Fatal("node 0 completed no pass with node 1")
	}
	if got := w.held(1, "late"); got != "absent" {
		t.Fatalf("node 1 holds %s: the test wants the write missed by the pass", got)
	}
	since := time.Duration(w.clk.now - digestAt)
	if lag := time.Duration(st.Peers[0].PassAgoMs) * time.Millisecond; lag < since.Truncate(time.Millisecond) {
		t.Fatalf("node 0 reports an anti-entropy lag of %v with node 1, which lacks a write node 0 took %v ago; its pass began %v ago", lag, since-500*time.Millisecond, since)
	}
}

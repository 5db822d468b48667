package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A node collects a tombstone only at or below its own refusal point as
// well as the horizon: a late copy of the value it deleted (a duplicated
// replicate, held on a slow link) is then refused. A node used to collect
// at a horizon it heard of from a third node, above its refusal point, and
// then applied the late copy: it served the deleted key for good, its peers
// refusing it back (found by review).
func TestCollectWaitsForTheRefusalPoint(t *testing.T) {
	const A, B, C = 0, 1, 2
	w := newWorld(t, 3, nil)
	w.run(5 * time.Second)

	// A slow link A->B (1.9 s, under the 2 s round timeout): every message.
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if from == A && to == B {
			return 1900 * time.Millisecond
		}
		return time.Millisecond
	}
	var stale []wmsg
	w.tap = func(m wmsg) {
		if m.from == A && m.to == B && m.b[0] == mesh.KindReplicate && len(stale) == 0 {
			stale = append(stale, m) // a duplicate of the replicate, held
		}
	}
	set := w.set(A, "k", "v")
	w.tap = nil
	del := w.del(A, "k")
	t.Logf("set k=v at %s, deleted at %s", set, del)

	// Once B has held k's tombstone and collected it, the held duplicate
	// of the set arrives.
	sawTomb, collected := false, false
	for i := 0; i < 20000 && !collected; i++ {
		w.step()
		h := w.held(B, "k")
		sawTomb = sawTomb || strings.HasPrefix(h, "tomb")
		if sawTomb && h == "absent" {
			collected = true
			t.Logf("at %v: B collected k's tombstone; horizon %s, refusal point %s", time.Duration(w.clk.now), w.nodes[B].Horizon(), w.nodes[B].Refuse())
			w.nodes[B].HandleMessage(stale[0].from, stale[0].b)
			w.flush()
		}
	}
	if !collected {
		t.Fatalf("B never collected k's tombstone (holds %s)", w.held(B, "k"))
	}
	w.latency = nil
	w.run(20 * time.Second)
	for _, id := range []core.NodeID{A, B, C} {
		if it, ok := w.nodes[id].Get("k"); ok && !it.Tomb {
			t.Errorf("node %d serves the deleted key k=%q (stamp %s, delete was %s)", id, it.Value, it.Stamp, del)
		}
	}
}

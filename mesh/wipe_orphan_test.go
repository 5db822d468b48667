package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A delete that reached one peer (Y) but not another (Z) before the node
// that took it (X) lost its directory is carried to Z before any node
// collects it. The proof that a tombstone at or below the horizon is on
// every node rested on the node that stamped it; X's new directory's first
// passes, which began above the delete's stamp, carried nothing of it, yet
// counted: Y collected the tombstone while Z still held the value, every
// node then refused that value from Z as older than what it had collected,
// and Z served the deleted key for good (found by review).
func TestDeleteOfAWipedNodeReachesEveryPeerBeforeItIsCollected(t *testing.T) {
	const X, Y, Z = 0, 1, 2
	w := newWorld(t, 3, func(c *mesh.Config) {
		c.AntiEntropyInterval = 100 * time.Millisecond
		c.MaxOffset = time.Second
		if c.ID == X {
			c.AntiEntropyInterval = time.Second
		}
	})
	// X's calendar is behind and the links into it are slow, so its clock
	// (which follows its peers' as their messages tell them) lags theirs:
	// its delete is stamped below passes of Y and Z that began before the
	// delete reached Y.
	w.skew[X] = -int64(700 * time.Millisecond)
	phase := 0
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		switch {
		case phase == 1 && (from == X && to == Z || from == Z && to == X):
			return -1 // the delete does not reach Z
		case phase == 2 && (from == Y && to == Z || from == Z && to == Y):
			return -1 // nor does Y pass it on, for a while
		case phase < 2 && to == X:
			return 300 * time.Millisecond
		}
		return time.Millisecond
	}
	w.run(5 * time.Second)
	w.set(Z, "k", "v")
	w.run(2 * time.Second)

	phase = 1
	del := w.del(X, "k")
	for i := 0; i < 100 && !strings.HasPrefix(w.held(Y, "k"), "tomb"); i++ {
		w.step()
	}
	if h := w.held(Y, "k"); !strings.HasPrefix(h, "tomb") {
		t.Fatalf("the delete (%s) never reached Y, which holds %s", del, h)
	}
	phase = 2
	w.skew[X] = 0
	w.restart(X, true) // X's directory is lost; it starts afresh
	w.run(3 * time.Second)
	phase = 3
	w.run(15 * time.Second)

	for _, id := range []core.NodeID{X, Y, Z} {
		if it, ok := w.nodes[id].Get("k"); ok && !it.Tomb {
			t.Errorf("node %d serves the deleted key k=%q (stamp %s, delete was %s)", id, it.Value, it.Stamp, del)
		}
	}
	if w.nodes[X].StateHash() != w.nodes[Y].StateHash() || w.nodes[Y].StateHash() != w.nodes[Z].StateHash() {
		t.Errorf("the replicas never converged: X %s, Y %s, Z %s", w.held(X, "k"), w.held(Y, "k"), w.held(Z, "k"))
	}
}

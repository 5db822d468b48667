package mesh_test

import (
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// simTune is the simulator's mesh settings.
func simTune(c *mesh.Config) {
	c.AntiEntropyInterval = 200 * time.Millisecond
	c.RoundTimeout = 200 * time.Millisecond
	c.MaxOffset = time.Second
}

// A wiped node (a new incarnation) stamps its writes above its peers'
// refusal points, which followed its predecessor's clock and the fastest
// of the mesh: it holds them until every peer has answered it, and its
// clock has observed theirs. It used to stamp them by its calendar time,
// below those points: every peer refused them for keys it lacked, and a
// quorum-3 write was answered ok while only the wiped node held it (found
// by review).
func TestWipedNodeStampsAbovePeersRefusalPoints(t *testing.T) {
	const A, B, C = 0, 1, 2
	w := newWorld(t, 3, simTune)
	w.skew[C] = int64(800 * time.Millisecond) // within the max offset
	w.run(5 * time.Second)

	w.restart(A, true) // A's data directory is lost; A starts afresh
	v := "v"
	var got *core.Response
	w.nodes[A].HandleRequest(&core.Request{Op: core.OpSet, Key: "fresh", Value: &v, Quorum: 3}, func(r core.Response) { got = &r })
	w.run(10 * time.Second)
	if got == nil || !got.OK {
		t.Fatalf("quorum-3 write on the wiped node answered %+v; want ok", got)
	}
	for _, id := range []core.NodeID{B, C} {
		if _, ok := w.nodes[id].Get("fresh"); !ok {
			t.Errorf("node %d never got the acknowledged write of 'fresh' (10 s later)", id)
		}
	}
}

// A node whose directory is new and that cannot reach a peer holds writes
// for QuorumTimeout, then refuses them unavailable, without effect; it takes
// them once the peer answers, and a restart in between does not let it
// skip the wait.
func TestNewNodeTakesWritesOnceEveryPeerAnswered(t *testing.T) {
	const A, C = 0, 2
	cut := true
	w := newWorld(t, 3, func(c *mesh.Config) { c.QuorumTimeout = time.Second })
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if cut && (from == C || to == C) {
			return -1
		}
		return time.Millisecond
	}
	v := "v"
	r := w.do(A, &core.Request{Op: core.OpSet, Key: "k", Value: &v})
	if r.OK || r.Error == nil || r.Error.Code != core.CodeUnavailable {
		t.Fatalf("a write while node 2 was never heard from answered %+v; want unavailable", r)
	}
	if _, ok := w.nodes[A].Get("k"); ok {
		t.Fatal("the refused write was applied")
	}
	t.Logf("refused: %s", r.Error.Message)
	w.restart(A, false)
	if r := w.do(A, &core.Request{Op: core.OpSet, Key: "k", Value: &v}); r.OK {
		t.Fatalf("after a restart, still cut off from node 2, a write answered ok (stamp %s)", r.Stamp)
	}
	cut = false
	w.run(3 * time.Second) // A's next round reaches node 2 (RoundTimeout)
	if s := w.set(A, "k", "v"); s.IsZero() {
		t.Fatal("a write once every peer answered: no stamp")
	}
}

// A mesh of one node has no peer to wait for: it takes writes at once.
func TestMeshOfOneTakesWritesAtOnce(t *testing.T) {
	w := newWorld(t, 1, func(c *mesh.Config) { c.QuorumTimeout = time.Hour })
	v := "v"
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "k", Value: &v})
	if !r.OK || w.clk.now > int64(10*time.Millisecond) {
		t.Fatalf("a write on a mesh of one node answered %+v after %v", r, time.Duration(w.clk.now))
	}
}

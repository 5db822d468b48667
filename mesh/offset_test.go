package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// A node whose calendar runs ahead of its peers' by more than the max
// offset, and stays ahead (a clock stepped forward and never set back),
// stamps its writes ahead of every peer's calendar: each peer drops its
// every message, so the writes live on it alone, and once calendar time
// catches up they win over everything written elsewhere meanwhile. Nothing
// on the node could tell until its peers told it: now they do, and it
// refuses writes while most of its peers refuse its messages, and takes
// them again once the clocks agree.
func TestNodeAheadOfItsPeersRefusesWrites(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second) // the three join
	w.skew[0] = int64(time.Hour)
	// The first write after the jump may be taken: no peer has refused
	// anything yet. Its replication is what they refuse.
	v := "during the jump"
	w.do(0, &core.Request{Op: core.OpSet, Key: "a", Value: &v})
	w.run(3 * time.Second)
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "b", Value: &v})
	if r.OK {
		t.Fatalf("node 0, an hour ahead of its peers, acknowledged a write stamped %s; node 1 holds %s of it", r.Stamp, w.held(1, "b"))
	}
	if r.Error.Code != core.CodeUnavailable || !strings.Contains(r.Error.Message, "ahead of the clocks of nodes 1, 2") {
		t.Fatalf("refused as %s: %q; want unavailable, naming the clocks of nodes 1, 2", r.Error.Code, r.Error.Message)
	}
	if g := w.do(0, &core.Request{Op: core.OpGet, Key: "a"}); !g.OK {
		t.Fatalf("get at node 0: %+v", g.Error)
	}
	// The peers, in step with each other, write on.
	w.set(1, "c", "at node 1")
	w.set(2, "c", "at node 2")
	if st := w.status(0); st.Peers[0].Clock != "ahead" || st.Peers[1].Clock != "ahead" {
		t.Fatalf("node 0's status of its peers' clocks: %q, %q; want ahead, ahead", st.Peers[0].Clock, st.Peers[1].Clock)
	}
	if st := w.status(1); st.Peers[0].Clock != "behind" || st.Peers[1].Clock != "" {
		t.Fatalf("node 1's status of its peers' clocks: %q, %q; want behind (of node 0), in step (node 2)", st.Peers[0].Clock, st.Peers[1].Clock)
	}
	// The peers' calendars catch up (the hour passes): node 0 writes again
	// once the evidence lapses.
	w.skew[1], w.skew[2] = int64(time.Hour), int64(time.Hour)
	w.run(10 * time.Second)
	w.set(0, "d", "clocks agree")
}

// A node whose calendar runs behind its peers' by more than the max offset
// drops their every message: it never learns their writes, and its own
// lose to writes made before them. It refuses writes too, and its peers,
// in step with each other, write on.
func TestNodeBehindItsPeersRefusesWrites(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second)
	w.skew[1], w.skew[2] = int64(time.Hour), int64(time.Hour)
	w.run(3 * time.Second)
	v := "behind"
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "a", Value: &v})
	if r.OK {
		t.Fatalf("node 0, an hour behind its peers, acknowledged a write stamped %s", r.Stamp)
	}
	if r.Error.Code != core.CodeUnavailable || !strings.Contains(r.Error.Message, "behind the clocks of nodes 1, 2") {
		t.Fatalf("refused as %s: %q; want unavailable, naming the clocks of nodes 1, 2", r.Error.Code, r.Error.Message)
	}
	w.set(1, "b", "at node 1")
	w.set(2, "b", "at node 2")
}

// jumpAndBothRefuse moves node 0's calendar an hour ahead and requires
// nodes 0 and 1, which hear only each other, both to refuse writes, each
// naming the other's clock.
func jumpAndBothRefuse(t *testing.T, w *world) {
	t.Helper()
	w.skew[0] = int64(time.Hour)
	v := "x"
	w.do(0, &core.Request{Op: core.OpSet, Key: "a", Value: &v})
	w.run(3 * time.Second)
	for id, want := range []string{"ahead of the clocks of node 1", "behind the clocks of node 0"} {
		r := w.do(core.NodeID(id), &core.Request{Op: core.OpSet, Key: "b", Value: &v})
		if r.OK || !strings.Contains(r.Error.Message, want) {
			t.Fatalf("node %d answered %+v; want a refusal saying %q", id, r, want)
		}
	}
}

// In a mesh of two whose clocks disagree, neither node can tell whose is
// wrong: both refuse writes, each naming the other's clock.
func TestTwoNodesOutOfStepBothRefuse(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(2 * time.Second)
	jumpAndBothRefuse(t, w)
}

// A peer not heard from for longer than the window does not count: with
// node 2 cut off that long, nodes 0 and 1 are a mesh of two, and both refuse
// writes when their clocks disagree; once node 2, in step with node 1, is
// back, node 1 writes again and node 0, ahead of both, still refuses.
func TestOutOfStepCountsOnlyPeersHeard(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second)
	cut := true // node 2 is cut off: nothing to it or from it arrives
	w.latency = func(from, to core.NodeID, _ []byte) time.Duration {
		if cut && (from == 2 || to == 2) {
			return -1
		}
		return time.Millisecond
	}
	w.run(25 * time.Second)
	jumpAndBothRefuse(t, w)
	cut = false
	w.run(3 * time.Second)
	w.set(1, "c", "node 2 is back")
	v := "x"
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "c", Value: &v})
	if r.OK || !strings.Contains(r.Error.Message, "ahead of the clocks of nodes 1, 2") {
		t.Fatalf("node 0 answered %+v; want a refusal naming nodes 1, 2", r)
	}
}

// A node ahead of its peers that takes no write keeps the last clock
// reading it took, which its calendar leaves behind. Rounds that carried
// that reading were taken once the peers' calendars came within the max
// offset of it (here: 1.5 s ahead, a max offset of 0.5 s: a second after
// the jump), and the node took that for the clocks agreeing, and took a
// write stamped by its calendar, as far ahead as ever (found by the
// simulator). Each round's digest now carries a fresh reading: every write
// the node is sent while its calendar is ahead must be refused.
func TestNodeAheadStaysRefusingBetweenRefusals(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second)
	w.skew[0] = int64(1500 * time.Millisecond)
	v := "x"
	w.do(0, &core.Request{Op: core.OpSet, Key: "a", Value: &v})
	w.run(100 * time.Millisecond)
	for i := range 150 {
		if r := w.do(0, &core.Request{Op: core.OpSet, Key: "b", Value: &v}); r.OK {
			t.Fatalf("write %d of 150, %v after the jump: node 0, 1.5 s ahead of its peers, took it (stamp %s)", i+1, 100*time.Millisecond+time.Duration(i)*37*time.Millisecond, r.Stamp)
		}
		w.run(37 * time.Millisecond)
	}
}

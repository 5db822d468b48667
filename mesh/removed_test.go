package mesh_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// kill crashes node id for good, as a SIGKILL would: its timers die, its
// disk keeps what it wrote, and it takes no message until started again.
func (w *world) kill(id core.NodeID) {
	w.nodes[id].Close()
	for _, t := range w.timers[id] {
		t.stopped = true
	}
	w.timers[id] = nil
	w.disks[id].ProcessCrash()
	w.down[id] = true
}

// restartWith restarts node id (a process restart, its directory kept)
// with removed as its Config.Removed.
func (w *world) restartWith(id core.NodeID, removed ...core.NodeID) {
	w.kill(id)
	w.startWith(id, removed...)
}

func (w *world) startWith(id core.NodeID, removed ...core.NodeID) {
	tune := w.tune
	w.tune = func(c *mesh.Config) {
		if tune != nil {
			tune(c)
		}
		c.Removed = removed
		c.Limits.QuorumMax = len(c.Nodes) - len(removed)
	}
	w.start(id, w.ids, w.tune)
	w.tune = tune
}

// runStopping is run for a world where a node may stop: a node whose
// Flush fails is taken down, and its error returned by id.
func (w *world) runStopping(d time.Duration) map[core.NodeID]error {
	stopped := map[core.NodeID]error{}
	flush := func() {
		for id, n := range w.nodes {
			if !w.down[core.NodeID(id)] {
				if err := n.Flush(); err != nil {
					stopped[core.NodeID(id)] = err
					w.kill(core.NodeID(id))
				}
			}
		}
	}
	for end := w.clk.now + int64(d); w.clk.now < end; {
		w.stepFlushing(flush)
	}
	return stopped
}

func (w *world) tombstones(id core.NodeID) int {
	n := 0
	w.nodes[id].Items(func(it mesh.Item) bool {
		if it.Tomb {
			n++
		}
		return true
	})
	return n
}

// A node that died for good holds every tombstone on every other node
// until it is removed (Config.Removed) from every one of them: then the
// two left collect them, and neither does before both are restarted
// without it. Its data directory, started again even once they list it
// again, is told it was removed and stops, its deleted keys never back on
// the others; it refuses to start on that directory again. A new
// directory in its place joins.
func TestRemovedNodeLetsTombstonesGoAndStaysOut(t *testing.T) {
	const A, B, C = 0, 1, 2
	const keys = 10
	w := newWorld(t, 3, nil)
	w.run(3 * time.Second)
	for i := range keys {
		w.set(A, fmt.Sprint("k", i), "v")
	}
	w.run(3 * time.Second)
	for i := range keys {
		if got := w.held(C, fmt.Sprint("k", i)); !strings.HasPrefix(got, "v@") {
			t.Fatalf("C holds k%d as %s before it dies", i, got)
		}
	}
	w.kill(C)
	for i := range keys {
		w.del(A, fmt.Sprint("k", i))
	}
	w.run(10 * time.Second)
	for _, id := range []core.NodeID{A, B} {
		if got := w.tombstones(id); got != keys {
			t.Fatalf("node %d holds %d tombstones with C dead and listed; want %d (none collected)", id, got, keys)
		}
	}

	// A without C, B still listing it: nothing collected anywhere, since
	// B's stability point, which every horizon is at or below, waits for
	// its pass with C.
	w.restartWith(A, C)
	w.run(10 * time.Second)
	for _, id := range []core.NodeID{A, B} {
		if got := w.tombstones(id); got != keys {
			t.Errorf("node %d holds %d tombstones with B still listing C; want %d: a horizon formed without C reached a node that counts it (horizon A %s, B %s)",
				id, got, keys, w.nodes[A].Horizon(), w.nodes[B].Horizon())
		}
	}

	// B without C too: both collect every tombstone.
	w.restartWith(B, C)
	w.run(10 * time.Second)
	for _, id := range []core.NodeID{A, B} {
		if got := w.tombstones(id); got != 0 {
			t.Errorf("node %d holds %d tombstones after every remaining node dropped C; want 0 (horizon %s)", id, got, w.nodes[id].Horizon())
		}
	}

	// A and B list C again. Its old directory comes back, with its old
	// config: they saved which of its incarnations they refuse, so it is
	// told that it was removed and stops, and its old values, deleted
	// since, do not come back to A or B.
	w.restartWith(A)
	w.restartWith(B)
	w.start(C, w.ids, nil)
	stopped := w.runStopping(5 * time.Second)
	if err := stopped[C]; err == nil || !strings.Contains(err.Error(), "removed from its mesh") || !strings.Contains(err.Error(), "empty the data directory") {
		t.Errorf("C on its old directory: stopped with %v; want the removal, and to empty the directory", err)
	}
	if len(stopped) != 1 {
		t.Errorf("nodes stopped: %v; want C alone", stopped)
	}
	for _, id := range []core.NodeID{A, B} {
		for i := range keys {
			if got := w.held(id, fmt.Sprint("k", i)); got != "absent" {
				t.Errorf("node %d holds deleted k%d as %s after C came back", id, i, got)
			}
		}
	}
	// It refuses to start on that directory again.
	cfg := mesh.DefaultConfig(C, w.ids)
	cfg.MeshID = 9
	nd, err := mesh.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(w.envs[C]); err == nil || !strings.Contains(err.Error(), "removed from its mesh") {
		t.Errorf("C started again on its old directory: %v; want it refused as removed", err)
	}
	nd.Close()

	// A new directory in its place joins, and takes writes.
	w.disks[C].ProcessCrash()
	w.disks[C].Wipe()
	w.start(C, w.ids, nil)
	if stopped := w.runStopping(10 * time.Second); len(stopped) != 0 {
		t.Fatalf("a new directory in C's place: stopped %v", stopped)
	}
	if r := w.do(C, &core.Request{Op: core.OpSet, Key: "new", Value: ptr("n")}); !r.OK {
		t.Errorf("a new directory in C's place takes no write: %+v", r.Error)
	}
	for i := range keys {
		if got := w.held(C, fmt.Sprint("k", i)); got != "absent" {
			t.Errorf("the new C holds deleted k%d as %s", i, got)
		}
	}
}

// A removed node is no peer: a mesh left with fewer nodes than the write
// quorum, a node removing itself, or an id not in the mesh are refused.
func TestRemovedConfigIsChecked(t *testing.T) {
	for _, tc := range []struct {
		removed []core.NodeID
		quorum  int
		want    string
	}{
		{[]core.NodeID{0}, 1, "does not remove itself"},
		{[]core.NodeID{5}, 1, "not among the nodes"},
		{[]core.NodeID{1, 1}, 1, "repeat"},
		{[]core.NodeID{1, 2}, 1, "keeps two at least"},
		{[]core.NodeID{2}, 3, "write quorum 3"},
	} {
		cfg := mesh.DefaultConfig(0, []core.NodeID{0, 1, 2})
		cfg.Removed, cfg.WriteQuorum = tc.removed, tc.quorum
		cfg.Limits.QuorumMax = 3 - len(tc.removed)
		if _, err := mesh.NewNode(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("removed %v, quorum %d: %v; want %q", tc.removed, tc.quorum, err, tc.want)
		}
	}
}

func ptr(s string) *string { return &s }

// A write the dead node sent one remaining node as it died, which arrived
// there after that node's pass with another had begun, reaches the other
// after both removed it: the other's refusal point does not count that
// pass, which did not carry the write. It used to, and refused the write
// for good when the next pass brought it: the two parted on it.
func TestRemovalDoesNotRefuseTheDeadNodesLastWrite(t *testing.T) {
	const A, B, C = 0, 1, 2
	w := newWorld(t, 3, nil)
	w.run(3 * time.Second)
	passesWith := func(of, with core.NodeID) int {
		for _, p := range w.status(of).Peers {
			if p.NodeID == int(with) {
				return p.Passes
			}
		}
		t.Fatalf("node %d has no peer %d", of, with)
		return 0
	}
	// C's replicate of its last write: to A never, to B late.
	const late = 2500 * time.Millisecond
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if from == C && b[0] == mesh.KindReplicate {
			if to == A {
				return -1
			}
			return late
		}
		return time.Millisecond
	}
	before := passesWith(B, A)
	stamp := w.set(C, "last", "words")
	w.kill(C)
	w.latency = nil
	// B completes a pass with A that began while the write was on its way
	// (two more passes: the second began after the first ended), and then
	// the write reaches B.
	for passesWith(B, A) < before+2 {
		w.step()
	}
	for w.held(B, "last") == "absent" {
		w.step()
	}
	t.Logf("the write %s reached B at %v", stamp, time.Duration(w.clk.now))
	// Now, before B's next pass with A ends, A drops C; later B too.
	w.restartWith(A, C)
	w.run(5 * time.Second)
	w.restartWith(B, C)
	w.run(5 * time.Second)
	for _, id := range []core.NodeID{A, B} {
		if got := w.held(id, "last"); !strings.HasPrefix(got, "words@") {
			t.Errorf("node %d holds C's last write as %s; want it (refusal point %s)", id, got, w.nodes[id].Refuse())
		}
	}
}

package election_test

import (
	"strings"
	"testing"

	"dkv/core"
)

// A follower that was receiving a leader's snapshot when that leader lost
// office, and then caught up from the new leader's log (which still held
// the entries it lacked), drops the part of the snapshot it had received:
// the file, and the handle open on it. It was kept until the node
// restarted or another transfer began, as much disk as the snapshot was
// sent of (found by review).
func TestAbandonedSnapshotTransferIsDropped(t *testing.T) {
	c := newNodeCluster(t, 3, compactingNode0)
	lagBehind(t, c)
	if st := c.do(0, &core.Request{Op: core.OpStatus}, 20); st.Status.SnapshotIndex == 0 {
		t.Fatal("node 0 took no snapshot")
	}
	// Node 2 comes back and node 0 sends it the snapshot; after a few of
	// its chunks node 0 is cut off.
	chunks := c.cutAfterChunks(3, 0)
	c.cut[2] = false
	nl, _ := c.waitLeader(0, 400)
	if r := c.do(nl, setReq("after", "1"), 40); !r.OK {
		t.Fatalf("set at the new leader: %+v", r.Error)
	}
	for range 40 {
		c.step()
	}
	if v, ok := c.nodes[2].Store().Get("after"); !ok || v != "1" {
		t.Fatalf("node 2 did not catch up: %q %v", v, ok)
	}
	if *chunks < 3 {
		t.Fatalf("node 2 got %d chunks of node 0's snapshot", *chunks)
	}
	names, _ := c.disks[2].List()
	for _, name := range names {
		if strings.HasPrefix(name, "recv-") {
			t.Fatalf("node 2 caught up from node %d's log and still keeps %s, a part of node 0's snapshot: %v", nl, name, names)
		}
	}
}

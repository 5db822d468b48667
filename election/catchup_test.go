package election

import "testing"

// A follower that fell behind catches up in one go, a window of entries
// after each of its acknowledgements, not a window a heartbeat: an
// acknowledgement that lets entries go but moves no commit index made the
// leader wait for its next tick to send them, though they were due at once
// (found by review: on an idle cluster, a follower back from a partition
// caught up at InflightEntriesMax entries a tick).
func TestLaggingFollowerCatchesUpWithoutWaitingForTicks(t *testing.T) {
	c := newCluster(t, 3, 3)
	withUncommittedBytesMax(c, 1<<20)
	l := c.settle(100)
	f := (l + 1) % 3
	c.isolate(f, true)
	for k := range 60 {
		if _, err := c.propose(l); err != nil {
			t.Fatalf("proposal %d: %v", k, err)
		}
		c.deliverAll()
	}
	c.inflight = nil
	c.isolate(f, false)
	c.tick(l) // one heartbeat: the rest follows from the answers
	c.deliverAll()
	if got, want := c.members[f].r.LastIndex(), c.members[l].r.LastIndex(); got != want {
		t.Fatalf("after one heartbeat and its answers, the follower's log ends at %d, the leader's at %d (a window is %d entries)", got, want, c.members[l].r.cfg.InflightEntriesMax)
	}
}

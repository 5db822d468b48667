package election

import (
	"testing"

	"dkv/core"
)

// A follower that does not acknowledge (its disk stalled, or its answers
// lost) is sent at most InflightBytesMax bytes of entries past what it
// acknowledged, whatever their count; it holds them in memory until it can
// persist them. Once it answers, it gets the rest.
func TestInflightBytesBoundWhatASilentFollowerIsSent(t *testing.T) {
	c := newCluster(t, 3, 1)
	cfg := c.cfg
	c.cfg = func(id core.NodeID) Config {
		cc := cfg(id)
		cc.UncommittedBytesMax = 1 << 20
		cc.InflightBytesMax = 3000
		return cc
	}
	for i := range c.members {
		c.restart(i)
	}
	l := c.settle(100)
	f := (l + 1) % 3
	c.cut[f][l] = true // f's acknowledgements are lost
	match := c.members[l].r.progress[f].match
	for k := range 12 {
		if err := c.proposeBytes(l, 1000); err != nil {
			t.Fatalf("proposal %d: %v", k, err)
		}
		c.deliverAll()
	}
	fr := c.members[f].r
	if sent := fr.log.dataBytes(match+1, fr.log.lastIndex()); sent > 3000 || sent < 1000 {
		t.Fatalf("the silent follower holds %d bytes of entries past index %d, the last it acknowledged; want 1000 to 3000 (the bound)", sent, match)
	}
	if lr := c.members[l].r; lr.Committed() != lr.LastIndex() {
		t.Fatalf("the leader committed %d of %d with the other follower", lr.Committed(), lr.LastIndex())
	}
	clear(c.cut[f])
	c.rounds(10)
	if got, want := fr.LastIndex(), c.members[l].r.LastIndex(); got != want || fr.Committed() != want {
		t.Fatalf("the follower's log ends at %d (committed %d) once it answers again; the leader's at %d", got, fr.Committed(), want)
	}
}

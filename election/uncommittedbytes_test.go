package election

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"dkv/core"
)

// withUncommittedBytesMax has the cluster's nodes bound a leader's
// uncommitted bytes at max, and restarts them (fresh) with it.
func withUncommittedBytesMax(c *cluster, bytesMax int) {
	cfg := c.cfg
	c.cfg = func(id core.NodeID) Config {
		cc := cfg(id)
		cc.UncommittedBytesMax = bytesMax
		return cc
	}
	for i := range c.members {
		c.restart(i)
	}
}

// proposeBytes proposes an entry of size bytes at node i.
func (c *cluster) proposeBytes(i, size int) error {
	c.proposals++
	_, err := c.members[i].r.Propose(bytes.Repeat([]byte{'x'}, size))
	c.turn(i)
	return err
}

func wantUncommitted(t *testing.T, r *Raft, entries, bytes int) {
	t.Helper()
	if e, b := r.Uncommitted(); e != entries || b != bytes {
		t.Fatalf("leader holds %d uncommitted entries of %d bytes, want %d of %d", e, b, entries, bytes)
	}
}

// A leader whose followers do not acknowledge (their disks stalled, or
// their answers lost) refuses proposals once the uncommitted entries hold
// UncommittedBytesMax bytes, long before their count reaches its bound;
// they are taken again once what it holds commits. With nothing
// uncommitted, an entry larger than the whole bound is taken, alone.
func TestUncommittedBytesBoundRefusesUntilCommitted(t *testing.T) {
	c := newCluster(t, 3, 1)
	withUncommittedBytesMax(c, 1000)
	l := c.settle(100)
	wantUncommitted(t, c.members[l].r, 0, 0)
	for f := range c.members {
		if f != l {
			c.cut[f][l] = true // the followers' acknowledgements are lost
		}
	}
	for k := range 3 {
		if err := c.proposeBytes(l, 300); err != nil {
			t.Fatalf("proposal %d of 300 bytes: %v", k, err)
		}
	}
	c.deliverAll()
	wantUncommitted(t, c.members[l].r, 3, 900)
	if err := c.proposeBytes(l, 300); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("a proposal past the bound of bytes, with 3 entries uncommitted: %v, want %v", err, ErrProposalDropped)
	}
	if err := c.proposeBytes(l, 100); err != nil {
		t.Fatalf("a proposal that fills the bound exactly: %v", err)
	}
	if err := c.proposeBytes(l, 1); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("a 1-byte proposal on a full bound: %v, want %v", err, ErrProposalDropped)
	}
	c.deliverAll()
	wantUncommitted(t, c.members[l].r, 4, 1000)

	clear(c.cut[0])
	clear(c.cut[1])
	clear(c.cut[2])
	c.rounds(3)
	if got, _ := c.leader(); got != l {
		t.Fatalf("node %d leads, not %d", got, l)
	}
	wantUncommitted(t, c.members[l].r, 0, 0)
	if err := c.proposeBytes(l, 5000); err != nil {
		t.Fatalf("a proposal of 5000 bytes, larger than the bound, with nothing uncommitted: %v", err)
	}
	if err := c.proposeBytes(l, 1); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("a 1-byte proposal behind one past the bound: %v, want %v", err, ErrProposalDropped)
	}
	c.rounds(3)
	wantUncommitted(t, c.members[l].r, 0, 0)
	if err := c.proposeBytes(l, 1); err != nil {
		t.Fatalf("a 1-byte proposal once all committed: %v", err)
	}
	c.rounds(3)
	for i, m := range c.members {
		if got := len(m.applied); got != 7 {
			t.Fatalf("node %d applied %d entries, want 7 (a leader's empty one, 6 proposals)", i, got)
		}
	}
}

// A new leader counts the uncommitted entries of earlier terms in its log
// toward the bound: they are in its memory all the same, and it commits
// them with its own.
func TestUncommittedBytesCountAnEarlierTermsEntries(t *testing.T) {
	cfg := DefaultConfig(0, []core.NodeID{0}, testRand{rand.New(rand.NewPCG(1, 1))})
	cfg.UncommittedBytesMax = 1000
	cfg.HardState = HardState{Term: 1, Vote: 0}
	cfg.Entries = []Entry{{Term: 1, Index: 1, Data: make([]byte, 600)}, {Term: 1, Index: 2, Data: make([]byte, 300)}}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 * cfg.ElectionTicks {
		r.Tick()
	}
	if r.State() != Leader {
		t.Fatalf("a single node is %v after two election timeouts", r.State())
	}
	wantUncommitted(t, r, 3, 900) // its term's empty entry too
	if _, err := r.Propose(make([]byte, 101)); !errors.Is(err, ErrProposalDropped) {
		t.Fatalf("101 bytes on 900 of 1000: %v, want %v", err, ErrProposalDropped)
	}
	if _, err := r.Propose(make([]byte, 100)); err != nil {
		t.Fatalf("100 bytes on 900 of 1000: %v", err)
	}
	rd := r.Ready()
	r.Advance(rd)
	wantUncommitted(t, r, 0, 0)
	if _, err := r.Propose(make([]byte, 1000)); err != nil {
		t.Fatalf("1000 bytes with nothing uncommitted: %v", err)
	}
}

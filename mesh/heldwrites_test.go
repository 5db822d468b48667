package mesh

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"dkv/core"
)

// heldWrites acknowledges exactly the quorum stamps whose items this node
// holds (applied, or beaten by a newer item of their key), in the
// message's order, whatever order the peer sent them in.
func TestHeldWritesAreTheQuorumWritesHeld(t *testing.T) {
	rep, err := newReplica(core.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{rep: rep}
	m := &message{}
	r := rand.New(rand.NewPCG(1, 2))
	var want []Stamp
	for i := range 500 {
		it := Item{Key: fmt.Sprintf("k%03d", i), Stamp: Stamp{Wall: int64(1000 + r.IntN(100000)), Node: 1}, Value: "v"}
		m.items = append(m.items, it)
		quorum, held := r.IntN(3) > 0, r.IntN(2) == 0
		if held {
			if r.IntN(2) == 0 {
				rep.apply(&it, nil) // the item itself
			} else {
				newer := it
				newer.Stamp.Wall++
				rep.apply(&newer, nil) // a newer one of its key
			}
		} else if r.IntN(2) == 0 {
			older := it
			older.Stamp.Wall--
			rep.apply(&older, nil) // an older one: the item is not held
		}
		if quorum {
			m.quorum = append(m.quorum, it.Stamp)
			if held {
				want = append(want, it.Stamp)
			}
		}
	}
	r.Shuffle(len(m.quorum), func(i, j int) { m.quorum[i], m.quorum[j] = m.quorum[j], m.quorum[i] })
	got := n.heldWrites(m)
	slices.SortFunc(got, Stamp.Compare)
	slices.SortFunc(want, Stamp.Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("held %d stamps, want %d", len(got), len(want))
	}
}

// BenchmarkHeldWrites: a replicate of 40,000 small quorum writes, all held.
func BenchmarkHeldWrites(b *testing.B) {
	rep, err := newReplica(core.NewStore())
	if err != nil {
		b.Fatal(err)
	}
	n := &Node{rep: rep}
	m := &message{}
	for i := range 40_000 {
		it := Item{Key: fmt.Sprintf("k%05d", i), Stamp: Stamp{Wall: int64(1000 + i), Node: 1}, Value: "v"}
		rep.apply(&it, nil)
		m.items = append(m.items, it)
		m.quorum = append(m.quorum, it.Stamp)
	}
	b.ResetTimer()
	for range b.N {
		if len(n.heldWrites(m)) != 40_000 {
			b.Fatal("not every write held")
		}
	}
}

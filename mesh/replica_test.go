package mesh

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"dkv/core"
)

func held(r *replica) []Item {
	var out []Item
	r.store.Ascend("", func(sk, v string) bool {
		it, err := decodeVersion(userKey(sk), v)
		if err != nil {
			panic(err)
		}
		out = append(out, it)
		return true
	})
	return out
}

// Replicas that apply the same items in any order hold the same items,
// the highest stamp of each key, with the same digests: last writer wins
// commutes, which is what lets anti-entropy compare digests.
func TestReplicaConvergesInAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOfNDistinct(rapid.StringN(1, 6, -1), 1, 5, func(s string) string { return s }).Draw(t, "keys")
		var items []Item
		for range rapid.IntRange(1, 30).Draw(t, "n") {
			it := genItem().Draw(t, "item")
			it.Key = rapid.SampledFrom(keys).Draw(t, "key")
			items = append(items, it)
		}
		a, _ := newReplica(core.NewStore())
		b, _ := newReplica(core.NewStore())
		for i := range items {
			a.apply(&items[i], nil)
		}
		perm := rapid.Permutation(items).Draw(t, "perm")
		for i := range perm {
			b.apply(&perm[i], nil)
		}
		// Two items of one key with one stamp are one write; generated
		// ones may differ, and then the first applied stays: skip those.
		for i := range items {
			for j := range items[:i] {
				if items[i].Key == items[j].Key && items[i].Stamp == items[j].Stamp && items[i] != items[j] {
					t.Skip("two different items with one stamp")
				}
			}
		}
		if !slices.Equal(held(a), held(b)) || a.digests != b.digests || a.total != b.total || a.live != b.live {
			t.Fatalf("orders disagree:\n%v\n%v", held(a), held(b))
		}
		for _, it := range held(a) {
			for _, x := range items {
				if x.Key == it.Key && it.Stamp.Less(x.Stamp) {
					t.Fatalf("key %s holds stamp %s below applied %s", it.Key, it.Stamp, x.Stamp)
				}
			}
		}
		// Digests computed afresh from the store match the running ones.
		c, err := newReplica(a.store.Clone())
		if err != nil || c.digests != a.digests || c.tombstones() != a.tombstones() || c.maxStamp != a.maxStamp {
			t.Fatalf("recomputed replica differs (%v)", err)
		}
	})
}

// rollback takes a batch's changes back out, digests included.
func TestReplicaRollback(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := newReplica(core.NewStore())
		for _, it := range rapid.SliceOf(genItem()).Draw(t, "before") {
			r.apply(&it, nil)
		}
		beforeItems, beforeDigests, beforeLive, beforeTombs := held(r), r.digests, r.live, r.tombstones()
		var undos []undo
		for _, it := range rapid.SliceOf(genItem()).Draw(t, "batch") {
			r.apply(&it, &undos)
		}
		r.rollback(undos)
		if !slices.Equal(held(r), beforeItems) || r.digests != beforeDigests || r.live != beforeLive || r.tombstones() != beforeTombs {
			t.Fatalf("rollback left %v, want %v", held(r), beforeItems)
		}
	})
}

// collect drops tombstones at or below the horizon, oldest first, at most
// max, and nothing else.
func TestReplicaCollect(t *testing.T) {
	r, _ := newReplica(core.NewStore())
	for i, it := range []Item{
		{Key: "a", Stamp: Stamp{Wall: 10}, Tomb: true},
		{Key: "b", Stamp: Stamp{Wall: 20}, Tomb: true},
		{Key: "c", Stamp: Stamp{Wall: 5}, Value: "live"},
		{Key: "d", Stamp: Stamp{Wall: 30}, Tomb: true},
	} {
		if !r.apply(&it, nil) {
			t.Fatalf("item %d not applied", i)
		}
	}
	if got := r.collect(Stamp{Wall: 25}, 1); got != 1 {
		t.Fatalf("collect with max 1 dropped %d", got)
	}
	if _, ok := r.get("a"); ok {
		t.Fatalf("the oldest tombstone (a) should go first")
	}
	if got := r.collect(Stamp{Wall: 25}, 10); got != 1 {
		t.Fatalf("second collect dropped %d, want 1 (b)", got)
	}
	for _, k := range []string{"c", "d"} {
		if _, ok := r.get(k); !ok {
			t.Fatalf("%s should stay (live, or above the horizon)", k)
		}
	}
	if r.tombstones() != 1 || r.live != 1 {
		t.Fatalf("tombstones %d live %d, want 1 1", r.tombstones(), r.live)
	}
}

// A store that is not a mesh node's (a single node's snapshot) is refused.
func TestReplicaRefusesForeignStore(t *testing.T) {
	s := core.NewStore()
	s.Set("plain-key", "plain value")
	if _, err := newReplica(s); err == nil {
		t.Fatal("a single node's store was taken for a mesh replica")
	}
}

// A BulkSet's later item of a key wins, as the protocol says, though all
// its items share one stamp.
func TestBulkItemsLastWins(t *testing.T) {
	got := bulkItems([]core.KV{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"}})
	want := []Item{{Key: "b", Value: "2"}, {Key: "a", Value: "3"}}
	if !slices.Equal(got, want) {
		t.Fatalf("bulkItems = %v, want %v", got, want)
	}
}

package core

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

// setBtreeDegree makes nodes small for the rest of the test, so that a few
// hundred keys build a tree several levels deep.
func setBtreeDegree(t testing.TB, degree int) {
	oldMax, oldMin := btreeItemsMax, btreeItemsMin
	btreeItemsMax, btreeItemsMin = 2*degree-1, degree-1
	t.Cleanup(func() { btreeItemsMax, btreeItemsMin = oldMax, oldMin })
}

// checkTree checks the B-tree's shape (keys in strict order across the
// whole tree, every leaf at one depth, no node over the maximum, a child
// per gap) and that it holds exactly model.
func checkTree(t *rapid.T, s *Store, model map[string]string) {
	tr := &s.tree.btree
	if size := unsafe.Sizeof(node{}); size != 112 {
		t.Fatalf("a node is %d bytes; it was made to fit 112", size)
	}
	if tr.length != len(model) {
		t.Fatalf("length %d, model has %d keys", tr.length, len(model))
	}
	var dataBytes int64
	for k, v := range model {
		dataBytes += EntryDataBytes(len(k), len(v))
	}
	if s.DataBytes() != dataBytes {
		t.Fatalf("DataBytes %d, model's keys and values make %d", s.DataBytes(), dataBytes)
	}
	if err := s.CheckDataBytes(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	leafDepth := -1
	var walk func(n *node, depth int, lo, hi string, hasLo, hasHi bool)
	walk = func(n *node, depth int, lo, hi string, hasLo, hasHi bool) {
		if len(n.items) > btreeItemsMax {
			t.Fatalf("node of %d items; the most is %d", len(n.items), btreeItemsMax)
		}
		if len(n.pfx) != len(n.items) || n.skip > prefixBytesMax {
			t.Fatalf("%d items, %d pfx, prefix of %d bytes", len(n.items), len(n.pfx), n.skip)
		}
		for i, it := range n.items {
			k := it.key()
			if (hasLo && k <= lo) || (hasHi && k >= hi) || (i > 0 && k <= n.items[i-1].key()) {
				t.Fatalf("key %q out of order", k)
			}
			if !strings.HasPrefix(k, n.prefix()) || n.pfx[i] != load4(k, int(n.skip)) {
				t.Fatalf("key %q: node prefix %q, pfx %x, want %x", k, n.prefix(), n.pfx[i], load4(k, int(n.skip)))
			}
		}
		if n.children == nil {
			if leafDepth < 0 {
				leafDepth = depth
			} else if depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			for _, it := range n.items {
				keys = append(keys, it.key())
			}
			return
		}
		if len(n.children) != len(n.items)+1 {
			t.Fatalf("%d items and %d children", len(n.items), len(n.children))
		}
		for i, c := range n.children {
			clo, chasLo, chi, chasHi := lo, hasLo, hi, hasHi
			if i > 0 {
				clo, chasLo = n.items[i-1].key(), true
			}
			if i < len(n.items) {
				chi, chasHi = n.items[i].key(), true
			}
			walk(c, depth+1, clo, chi, chasLo, chasHi)
			if i < len(n.items) {
				keys = append(keys, n.items[i].key())
			}
		}
	}
	if tr.root != nil {
		walk(tr.root, 0, "", "", false, false)
	}
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(keys, want) {
		t.Fatalf("tree holds %d keys, model %d (first difference somewhere in %v / %v)", len(keys), len(want), head(keys), head(want))
	}
	var got []string
	s.Ascend("", func(k, v string) bool {
		if model[k] != v {
			t.Fatalf("Ascend: %q holds %q, model %q", k, v, model[k])
		}
		got = append(got, k)
		return true
	})
	if !slices.Equal(got, keys) {
		t.Fatalf("Ascend gave %d keys, the tree holds %d", len(got), len(keys))
	}
}

func head(s []string) []string { return s[:min(len(s), 8)] }

// recorder is an Observer that keeps the model the store's changes imply.
type recorder struct{ m map[string]string }

func (r *recorder) Put(k, v string) { r.m[k] = v }
func (r *recorder) Remove(k string) { delete(r.m, k) }

// The store against a map: Set, Delete, Get, Ascend from any key, and
// clones that are written to on both sides (each has its own model), on
// trees of degree 2 to 4 and the real one. The observer hears every change.
func TestStoreModel(t *testing.T) {
	for _, degree := range []int{2, 3, 4, btreeDegree} {
		t.Run(fmt.Sprint("degree", degree), func(t *testing.T) {
			setBtreeDegree(t, degree)
			rapid.Check(t, storeModel)
		})
	}
}

func storeModel(t *rapid.T) {
	// Few distinct keys, so that writes collide; keys and values of any
	// bytes, empty ones included.
	keyGen := rapid.OneOf(
		rapid.SampledFrom([]string{"a", "b", "ab", "abc", "b\x00", "zz", "\xff", "m"}),
		rapid.StringMatching(`k[0-9]{1,3}`),
		rapid.String(),
		// Long shared prefixes, past 4 bytes and past prefixBytesMax.
		rapid.StringMatching(`user:session:[0-9a-c]{0,4}`),
		rapid.Custom(func(t *rapid.T) string {
			return strings.Repeat("p", rapid.IntRange(prefixBytesMax-4, prefixBytesMax+4).Draw(t, "p")) + rapid.StringMatching(`[a-c\x00]{0,3}`).Draw(t, "suffix")
		}),
	)
	valueGen := rapid.OneOf(rapid.Just(""), rapid.StringN(0, 3, -1), rapid.String())
	type tree struct {
		s     *Store
		model map[string]string
		obs   *recorder
	}
	newTree := func(s *Store, model map[string]string) *tree {
		tr := &tree{s: s, model: model, obs: &recorder{m: maps.Clone(model)}}
		s.Observe(tr.obs)
		return tr
	}
	trees := []*tree{newTree(NewStore(), map[string]string{})}
	steps := rapid.IntRange(1, 600).Draw(t, "steps")
	// Runs of ascending keys (a snapshot's load, a bulk fill) exercise the
	// split at a leaf's end.
	run := 0
	for step := range steps {
		tr := trees[rapid.IntRange(0, len(trees)-1).Draw(t, "tree")]
		switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
		case op <= 3:
			k, v := keyGen.Draw(t, "key"), valueGen.Draw(t, "value")
			if op == 0 {
				run++
				k = fmt.Sprintf("run%06d", run)
			}
			before, growth := tr.s.DataBytes(), tr.s.DataGrowth([]KV{{Key: k, Value: v}})
			old, existed := tr.s.Set(k, v)
			if tr.s.DataBytes()-before != growth {
				t.Fatalf("Set(%q): DataGrowth said %d, DataBytes moved %d", k, growth, tr.s.DataBytes()-before)
			}
			mold, mexisted := tr.model[k]
			if old != mold || existed != mexisted {
				t.Fatalf("Set(%q): old %q %v, model %q %v", k, old, existed, mold, mexisted)
			}
			tr.model[k] = v
		case op <= 5:
			k := keyGen.Draw(t, "key")
			if len(tr.model) > 0 && rapid.Bool().Draw(t, "existing") {
				k = rapid.SampledFrom(slices.Sorted(maps.Keys(tr.model))).Draw(t, "existing key")
			}
			old, existed := tr.s.Delete(k)
			mold, mexisted := tr.model[k]
			if old != mold || existed != mexisted {
				t.Fatalf("Delete(%q): old %q %v, model %q %v", k, old, existed, mold, mexisted)
			}
			delete(tr.model, k)
		case op == 6:
			k := keyGen.Draw(t, "key")
			v, ok := tr.s.Get(k)
			mv, mok := tr.model[k]
			if v != mv || ok != mok {
				t.Fatalf("Get(%q): %q %v, model %q %v", k, v, ok, mv, mok)
			}
		case op == 7:
			from := keyGen.Draw(t, "from")
			stop := rapid.IntRange(1, 20).Draw(t, "stop after")
			var got []string
			tr.s.Ascend(from, func(k, v string) bool {
				if tr.model[k] != v {
					t.Fatalf("Ascend: %q holds %q, model %q", k, v, tr.model[k])
				}
				got = append(got, k)
				return len(got) < stop
			})
			var want []string
			for _, k := range slices.Sorted(maps.Keys(tr.model)) {
				if k >= from && len(want) < stop {
					want = append(want, k)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Ascend(%q) stopping after %d: %q, want %q", from, stop, got, want)
			}
		case op == 8 && len(trees) < 4:
			c := tr.s.Clone()
			trees = append(trees, newTree(c, maps.Clone(tr.model)))
		case op == 9 && step%50 == 0:
			for _, tr := range trees {
				checkTree(t, tr.s, tr.model)
			}
		}
	}
	for _, tr := range trees {
		checkTree(t, tr.s, tr.model)
		if !maps.Equal(tr.obs.m, tr.model) {
			t.Fatalf("the observer's view differs from the store")
		}
	}
}

// DataGrowth of a bulk write counts each key once, at its last value, as
// the write applies them; a store's clone keeps its own count.
func TestStoreDataGrowthOfABulkWrite(t *testing.T) {
	s := NewStore()
	s.Set("a", "12345")
	s.Set("b", "1")
	items := []KV{{Key: "a", Value: "1"}, {Key: "c", Value: "xyz"}, {Key: "a", Value: "123"}, {Key: "b", Value: ""}, {Key: "c", Value: "x"}}
	before, growth := s.DataBytes(), s.DataGrowth(items)
	// a: 5 -> 3 bytes (-2); b: 1 -> 0 (-1); c: new, "x" (1 + 1 + 32).
	if want := int64(-2 - 1 + 34); growth != want {
		t.Fatalf("DataGrowth %d, want %d", growth, want)
	}
	c := s.Clone()
	for _, kv := range items {
		s.Set(kv.Key, kv.Value)
	}
	if s.DataBytes()-before != growth || c.DataBytes() != before {
		t.Fatalf("after the write: %d (from %d), the clone's %d", s.DataBytes(), before, c.DataBytes())
	}
	s.Delete("c")
	if err := s.CheckDataBytes(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckDataBytes(); err != nil {
		t.Fatal(err)
	}
}

// Values handed out by Get and Set stay what they were, whatever the
// store does later: the item a value points into is never written again.
func TestStoreValuesOutliveWrites(t *testing.T) {
	setBtreeDegree(t, 2)
	s := NewStore()
	for i := range 200 {
		s.Set(fmt.Sprintf("k%03d", i), strings.Repeat("v", i))
	}
	v, _ := s.Get("k100")
	old, _ := s.Set("k100", "new")
	c := s.Clone()
	for i := range 200 {
		s.Set(fmt.Sprintf("k%03d", i), "x")
		s.Delete(fmt.Sprintf("k%03d", i+1))
	}
	if want := strings.Repeat("v", 100); v != want || old != want {
		t.Fatalf("got %q and %q, want %q", v, old, want)
	}
	if cv, _ := c.Get("k100"); cv != "new" {
		t.Fatalf("clone holds %q", cv)
	}
}

// The store keeps no string it was given: a key or value that shares a
// larger buffer does not keep that buffer alive, and a buffer the caller
// reuses does not change the store.
func TestStoreCopiesItsStrings(t *testing.T) {
	buf := []byte("key-value")
	k, v := string(buf[:3]), string(buf[4:])
	s := NewStore()
	s.Set(k, v)
	s.Set("", "empty key")
	s.Set("empty value", "")
	it, _ := s.tree.get("key")
	if it.key() != "key" || it.value() != "value" || it.klen != 3 || it.vlen != 5 {
		t.Fatalf("item %q=%q", it.key(), it.value())
	}
	for _, c := range []struct{ k, v string }{{"", "empty key"}, {"empty value", ""}, {"key", "value"}} {
		if got, ok := s.Get(c.k); !ok || got != c.v {
			t.Fatalf("Get(%q) = %q, %v", c.k, got, ok)
		}
	}
}

// Keys stored in ascending order fill their leaves: the split at a leaf's
// end leaves full nodes behind, not half-empty ones.
func TestStoreAscendingFillsLeaves(t *testing.T) {
	s := NewStore()
	const n = 100_000
	for i := range n {
		s.Set(benchKey(i), "v")
	}
	leaves, items := 0, 0
	var walk func(n *node)
	walk = func(n *node) {
		if n.children == nil {
			leaves++
			items += len(n.items)
			return
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(s.tree.root)
	if fill := float64(items) / float64(leaves*btreeItemsMax); fill < 0.95 {
		t.Fatalf("leaves %.0f%% full after an ascending fill", 100*fill)
	}
}

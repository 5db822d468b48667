package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A mesh node's indexes rebuilt in steps report, in status, how many
// values are left to index: the live values at positions the rebuild has
// not reached, however the replica changes meanwhile. Here node 0 restarts
// holding values and tombstones, and while it rebuilds its peer sets keys
// over those tombstones and deletes live keys, as a node catching up from
// its peers sees. The rebuild's own total, the values at its start, went
// wrong both ways: it showed every value indexed (nothing left, as
// dkv_index_rebuild_left does) while values were still to come, and
// values left that a tombstone ahead of the walk had taken away.
func TestIndexRebuildProgressIsTrue(t *testing.T) {
	idx := &laterIndexes{held: map[string]bool{}}
	w := newWorld(t, 2, func(c *mesh.Config) {
		if c.ID == 0 {
			c.Indexes = idx
			c.IndexBuild = core.IndexBuildConfig{InlineValuesMax: -1, StepValues: 2}
		}
	})
	const keys = 60
	key := func(i int) string { return fmt.Sprintf("k%02d", i) }
	for i := range keys {
		w.set(0, key(i), "v")
	}
	for i := 0; i < keys; i += 2 {
		w.del(0, key(i))
	}
	w.run(time.Second)
	w.restart(0, false)
	v := "again"
	for i := range keys {
		req := &core.Request{Op: core.OpSet, Key: key(i), Value: &v}
		if i%4 == 1 {
			req = &core.Request{Op: core.OpDelete, Key: key(i)}
		}
		w.nodes[1].HandleRequest(req, func(core.Response) {})
	}
	checkRebuildProgress(t, w, idx)
}

// A node whose directory was lost, and that restarts while it catches up
// from its peers, rebuilds its indexes in steps from what it had taken,
// while the rest of its peers' items land ahead of the walk and beside it.
func TestIndexRebuildProgressOfACatchingUpNodeIsTrue(t *testing.T) {
	idx := &laterIndexes{held: map[string]bool{}}
	w := newWorld(t, 2, func(c *mesh.Config) {
		c.SummaryItemsMax, c.PushBytesMax = 4, 128 // a catch-up of many rounds
		c.AntiEntropyInterval = 200 * time.Millisecond
		if c.ID == 0 {
			c.Indexes = idx
			c.IndexBuild = core.IndexBuildConfig{InlineValuesMax: -1, StepValues: 2}
		}
	})
	for i := range 200 {
		w.set(1, fmt.Sprintf("k%03d", i), "v")
		if i%3 == 0 {
			w.del(1, fmt.Sprintf("k%03d", i))
		}
	}
	w.run(time.Second)
	w.restart(0, true)
	for i := 0; i < 10_000 && w.do(0, &core.Request{Op: core.OpStatus}).Status.Keys < 20; i++ {
		w.step()
	}
	if keys := w.do(0, &core.Request{Op: core.OpStatus}).Status.Keys; keys < 20 || keys > 100 {
		t.Fatalf("node 0 holds %d keys; the test wants it restarted part way through its catch-up", keys)
	}
	w.restart(0, false)
	checkRebuildProgress(t, w, idx)
}

// checkRebuildProgress steps w until node 0's index rebuild ends, and
// checks at every step that status tells how many values it has truly
// still to hand over.
func checkRebuildProgress(t *testing.T, w *world, idx *laterIndexes) {
	t.Helper()
	left := func() int {
		n := 0
		w.nodes[0].Items(func(it mesh.Item) bool {
			if !it.Tomb && !w.nodes[0].IndexesCover(it.Key) {
				n++
			}
			return true
		})
		return n
	}
	rebuilding := 0
	for i := 0; i < 2000; i++ {
		// The status is taken when the request comes (its answer waits
		// for the turn's end, and the node goes on meanwhile).
		want := left()
		r := w.do(0, &core.Request{Op: core.OpStatus})
		rb := r.Status.Indexes.Rebuild
		if rb == nil {
			break
		}
		if got := rb.Total - rb.Indexed; got != want {
			t.Fatalf("status says %d of %d values indexed, %d left; %d were left (%d keys held)", rb.Indexed, rb.Total, got, want, r.Status.Keys)
		}
		if want > 0 {
			rebuilding++
		}
		w.step()
	}
	if rebuilding < 3 {
		t.Fatalf("values were left to index in %d statuses; the test wants the rebuild in steps", rebuilding)
	}
	st := w.do(0, &core.Request{Op: core.OpStatus}).Status
	if st.Indexes.Rebuild != nil || left() != 0 {
		t.Fatalf("the rebuild never ended: %+v, %d left", st.Indexes.Rebuild, left())
	}
	if len(idx.held) != st.Keys {
		t.Fatalf("the indexes hold %d values; the node %d", len(idx.held), st.Keys)
	}
}

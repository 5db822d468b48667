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
	// left is what the rebuild has truly still to hand over.
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
		r := w.do(0, &core.Request{Op: core.OpStatus})
		rb := r.Status.Indexes.Rebuild
		if rb == nil {
			break
		}
		rebuilding++
		if got, want := rb.Total-rb.Indexed, left(); got != want {
			t.Fatalf("status says %d of %d values indexed, %d left; %d are left (%d keys held)", rb.Indexed, rb.Total, got, want, r.Status.Keys)
		}
		w.step()
	}
	if rebuilding < 3 {
		t.Fatalf("the rebuild was seen in %d statuses; the test wants it in steps", rebuilding)
	}
	if r := w.do(0, &core.Request{Op: core.OpStatus}); r.Status.Indexes.Rebuild != nil || left() != 0 {
		t.Fatalf("the rebuild never ended: %+v, %d left", r.Status.Indexes.Rebuild, left())
	}
	if len(idx.held) != w.do(0, &core.Request{Op: core.OpStatus}).Status.Keys {
		t.Fatalf("the indexes hold %d values; the node %d", len(idx.held), w.do(0, &core.Request{Op: core.OpStatus}).Status.Keys)
	}
}

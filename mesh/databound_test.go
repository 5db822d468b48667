package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A mesh node bounds the data bytes its clients' sets and bulk sets may
// add, and refuses those past it (store_full), taking nothing of them;
// its peers' writes it applies whatever the bound, or the replicas would
// part for good. Deletes of keys it holds are taken, full as it is (see
// TestDeletesOfAbsentKeysStopAtTheDataBound for those it lacks).
func TestMeshNodeRefusesItsClientsWritesPastItsDataBound(t *testing.T) {
	v := strings.Repeat("v", 100)
	w := newWorld(t, 3, nil)
	w.tune = func(cfg *mesh.Config) {
		if cfg.ID == 0 {
			cfg.Limits.DataBytesMax = 1 << 10
		}
	}
	w.restart(0, false)
	w.run(2 * time.Second)
	w.set(0, "a", v)
	for i := range 20 {
		w.set(1, "peer"+strings.Repeat("x", i), v) // about 3 KiB, past node 0's bound
	}
	w.run(3 * time.Second)
	if got := w.held(0, "peerxxxxxxxxxxxxxxxxxxx"); !strings.HasPrefix(got, v+"@") {
		t.Fatalf("node 0 holds its peer's write as %q: a peer's writes apply past the bound", got)
	}
	st := w.do(0, &core.Request{Op: core.OpStatus}).Status
	if st.DataBytes <= st.DataBytesMax || st.DataBytesMax != 1<<10 {
		t.Fatalf("node 0's status: %d of %d data bytes, want past a bound of 1024", st.DataBytes, st.DataBytesMax)
	}
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "b", Value: &v})
	if r.Error == nil || r.Error.Code != core.CodeStoreFull {
		t.Fatalf("a set past the bound: %+v, want store_full", r)
	}
	r = w.do(0, &core.Request{Op: core.OpBulkSet, Items: []core.KV{{Key: "a", Value: ""}, {Key: "c", Value: v}}})
	if r.Error == nil || r.Error.Code != core.CodeStoreFull {
		t.Fatalf("a bulk set that grows the store past the bound: %+v, want store_full", r)
	}
	w.del(0, "peer")
	r = w.do(0, &core.Request{Op: core.OpSet, Key: "a", Value: new(string)})
	if !r.OK {
		t.Fatalf("a set that shrinks a value: %+v", r.Error)
	}
	w.run(3 * time.Second)
	for id := range 3 {
		if got := w.held(core.NodeID(id), "b"); got != "absent" {
			t.Errorf("node %d holds the refused write as %q", id, got)
		}
		if got := w.held(core.NodeID(id), "c"); got != "absent" {
			t.Errorf("node %d holds the refused bulk write's c as %q", id, got)
		}
		if got := w.held(core.NodeID(id), "peer"); got != "absent" && !strings.HasPrefix(got, "tomb@") {
			t.Errorf("node %d holds peer as %q, want it deleted", id, got)
		}
		if err := w.nodes[id].CheckDataBytes(); err != nil {
			t.Errorf("node %d: %v", id, err)
		}
	}
}

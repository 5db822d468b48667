package mesh_test

import (
	"fmt"
	"testing"

	"dkv/core"
)

// Status's replicated counts the writes sent to each peer as they
// happened, as it says: a bulk_set is one write, however many keys.
func TestReplicatedCountsWrites(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(3e9) // the two join
	var items []core.KV
	for i := range 50 {
		items = append(items, core.KV{Key: fmt.Sprintf("k%02d", i), Value: "v"})
	}
	if r := w.do(0, &core.Request{Op: core.OpBulkSet, Items: items}); !r.OK {
		t.Fatalf("bulk_set: %+v", r.Error)
	}
	w.set(0, "one", "v")
	if got := w.status(0).Peers[0].Replicated; got != 2 {
		t.Fatalf("status says %d writes replicated to node 1; there were 2 (a bulk_set of 50 keys and a set)", got)
	}
}

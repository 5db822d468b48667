package mesh_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// While a peer is down no tombstone is collected, and a delete of a key
// the node lacks adds one: such deletes are refused store_full once they
// would grow the store past its data bound, as sets are. Taken, they grew
// it without end. A delete of a key the node holds goes on, full as it is.
func TestDeletesOfAbsentKeysStopAtTheDataBound(t *testing.T) {
	const bound = 2 << 10
	w := newWorld(t, 2, func(c *mesh.Config) {
		if c.ID == 0 {
			c.Limits.DataBytesMax = bound
		}
	})
	w.run(3 * time.Second) // the two join
	w.set(0, "held", strings.Repeat("v", 100))
	w.latency = func(from, to core.NodeID, b []byte) time.Duration { return -1 } // node 1 is gone
	refused := 0
	for i := range 200 {
		r := w.do(0, &core.Request{Op: core.OpDelete, Key: fmt.Sprintf("never-there-%03d", i)})
		switch {
		case r.OK:
		case r.Error.Code == core.CodeStoreFull:
			if !strings.Contains(r.Error.Message, "tombstone") {
				t.Fatalf("a delete refused store_full does not say why a delete grows the store: %s", r.Error.Message)
			}
			refused++
		default:
			t.Fatalf("delete %d: %+v", i, r.Error)
		}
	}
	st := w.do(0, &core.Request{Op: core.OpStatus}).Status
	if st.DataBytes > bound || refused == 0 {
		t.Fatalf("after 200 deletes of absent keys with a peer down: %d data bytes, bound %d, %d refused, %d tombstones", st.DataBytes, bound, refused, st.Mesh.Tombstones)
	}
	if r := w.do(0, &core.Request{Op: core.OpBulkDelete, Keys: []string{"held", "never-there-000"}}); !r.OK {
		t.Fatalf("a bulk_delete of a held key (and one already deleted) at the bound: %+v", r.Error)
	}
	if got := w.held(0, "held"); !strings.HasPrefix(got, "tomb@") {
		t.Fatalf("node 0 holds held as %s, want it deleted", got)
	}
	if err := w.nodes[0].CheckDataBytes(); err != nil {
		t.Fatal(err)
	}
}

package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// The writes a node holds until it joins its mesh (join.go) are checked
// against its data bound when they are taken, not only when they came:
// each fitted alone, and all of them were applied, past the bound, when the
// node joined (found by review).
func TestHeldWritesKeepTheDataBound(t *testing.T) {
	const A, C = 0, 2
	cut := true
	w := newWorld(t, 3, func(c *mesh.Config) {
		c.QuorumTimeout = 10 * time.Second
		if c.ID == A {
			c.Limits.DataBytesMax = 1 << 10
		}
	})
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if cut && (from == C || to == C) {
			return -1
		}
		return time.Millisecond
	}
	v := strings.Repeat("v", 600)
	var got []*core.Response
	for _, k := range []string{"a", "b"} {
		i := len(got)
		got = append(got, nil)
		w.nodes[A].HandleRequest(&core.Request{Op: core.OpSet, Key: k, Value: &v}, func(r core.Response) { got[i] = &r })
	}
	w.run(100 * time.Millisecond)
	if got[0] != nil || got[1] != nil {
		t.Fatalf("answered before node %d was heard from: %+v %+v", C, got[0], got[1])
	}
	cut = false
	w.run(3 * time.Second)
	if got[0] == nil || !got[0].OK {
		t.Fatalf("the first held write answered %+v; want ok", got[0])
	}
	if got[1] == nil || got[1].Error == nil || got[1].Error.Code != core.CodeStoreFull {
		t.Fatalf("the second held write, past the bound with the first, answered %+v; want store_full", got[1])
	}
	st := w.do(A, &core.Request{Op: core.OpStatus}).Status
	if st.DataBytes > st.DataBytesMax {
		t.Fatalf("node %d holds %d data bytes, past its bound of %d", A, st.DataBytes, st.DataBytesMax)
	}
}

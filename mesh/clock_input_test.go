package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A client's after-stamp within the max offset but with the logical counter
// at its maximum is taken: the next reading moves to the next nanosecond.
// It used to overflow the counter, an assertion that panicked the node
// (found by review).
func TestAfterStampAtLogicalMaxIsTaken(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(time.Second)
	after := mesh.Stamp{Wall: w.clk.Wall() + int64(100*time.Millisecond), Logical: 1<<32 - 1, Node: 1}
	v := "x"
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("node panicked on a client write with after=%s: %v", after, r)
		}
	}()
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "k", Value: &v, After: after.String()})
	if !r.OK {
		t.Fatalf("write with after=%s: %+v", after, r.Error)
	}
	got, err := mesh.ParseStamp(r.Stamp)
	if err != nil || !after.Less(got) {
		t.Fatalf("write stamped %s (%v); want above its after, %s", r.Stamp, err, after)
	}
}

// The same stamp reaching the other nodes, as a replicated write's stamp
// and a peer's clock: every node that observes it goes on taking writes.
func TestPeerClockAtLogicalMaxIsTaken(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(time.Second)
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	after := fmt.Sprintf("%d.%d.%d", w.clk.Wall()+int64(100*time.Millisecond), uint32(1<<32-2), 1)
	v := "x"
	if r := w.do(1, &core.Request{Op: core.OpSet, Key: "k", Value: &v, After: after}); !r.OK {
		t.Fatalf("write on node 1 with after=%s: %+v", after, r.Error)
	}
	w.run(5 * time.Millisecond) // the replicate reaches node 0
	var last mesh.Stamp
	for _, v := range []string{"y", "z", "w"} {
		s := w.set(0, "other", v)
		if !last.Less(s) {
			t.Fatalf("node 0 stamped %s after %s", s, last)
		}
		last = s
	}
}

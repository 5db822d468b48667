package mesh_test

import (
	"testing"
	"time"

	"dkv/core"
)

// A node wiped and created again while its calendar is behind the time
// its old directory was created (a machine that boots with a stale clock
// and starts the node before NTP sets it) joins its mesh and takes writes.
// Its incarnation, the calendar time of the directory's creation, was
// below the old one's, and every peer that knew the old one dropped all
// its messages as a delayed one of that earlier directory: it never joined
// and refused every write, for good, even once its calendar was right
// (found by review). A node now takes an incarnation above the one a peer
// names as its own.
func TestNodeWipedWithAClockBehindJoins(t *testing.T) {
	w := newWorld(t, 2, simTune)
	w.run(3 * time.Second) // the two join; node 0 knows node 1's incarnation

	w.skew[1] = -int64(time.Hour) // node 1 comes back on a machine an hour behind
	w.restart(1, true)
	w.run(time.Second)
	w.skew[1] = 0 // and NTP sets its clock right
	w.run(10 * time.Second)
	v := "v"
	var got *core.Response
	w.nodes[1].HandleRequest(&core.Request{Op: core.OpSet, Key: "k", Value: &v}, func(r core.Response) { got = &r })
	w.run(10 * time.Second)
	if got == nil || !got.OK {
		t.Fatalf("a write on the recreated node answered %+v; want ok", got)
	}
	if _, ok := w.nodes[0].Get("k"); !ok {
		t.Fatal("node 0 never got the recreated node's write")
	}
}

package mesh_test

import (
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// A node whose calendar clock jumped ahead by more than the max offset and
// was then set right (an NTP step back, a VM resumed with a wrong clock
// and corrected) keeps its hybrid clock where the jump took it: its stamps
// stay ahead of every peer's calendar time, and its peers drop every
// message it sends, as too far ahead. A write it acknowledged then never
// reached a peer until calendar time caught up, when it would win over
// every write made elsewhere meanwhile. Such a node must refuse writes,
// saying why, until calendar time is within the max offset of its clock
// (found by review).
func TestNodeWhoseClockRanAheadRefusesWrites(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second) // the three join
	w.skew[0] = int64(time.Hour)
	v := "during the jump"
	// Taken while the calendar is an hour ahead: nothing on the node can
	// tell that its calendar is wrong, so it is stamped an hour ahead.
	if r := w.do(0, &core.Request{Op: core.OpSet, Key: "a", Value: &v}); !r.OK {
		t.Fatalf("set during the jump: %+v", r.Error)
	}
	w.skew[0] = 0 // the calendar is set right
	w.run(100 * time.Millisecond)
	v = "after the jump"
	r := w.do(0, &core.Request{Op: core.OpSet, Key: "b", Value: &v})
	w.run(5 * time.Second)
	if r.OK {
		t.Fatalf("node 0 acknowledged a write stamped %s, an hour ahead of its calendar; node 1 holds %s of it after 5 s", r.Stamp, w.held(1, "b"))
	}
	if r.Error.Code != core.CodeUnavailable || !strings.Contains(r.Error.Message, "ahead of its calendar") {
		t.Fatalf("refused as %s: %q; want unavailable, saying the clock is ahead of its calendar", r.Error.Code, r.Error.Message)
	}
	// Reads are served, and the node takes writes again once calendar time
	// is within the max offset of its clock.
	if g := w.do(0, &core.Request{Op: core.OpGet, Key: "a"}); !g.OK {
		t.Fatalf("get: %+v", g.Error)
	}
	// An hour passes (every calendar moves, which the skews stand for);
	// the peers' refusals of its messages while it was ahead lapse
	// (offset.go).
	w.skew[0], w.skew[1], w.skew[2] = int64(time.Hour), int64(time.Hour), int64(time.Hour)
	w.run(10 * time.Second)
	w.set(0, "c", "calendar caught up")
}

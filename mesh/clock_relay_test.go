package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"dkv/core"
)

// Every node's hybrid clock takes up the fastest calendar's time and passes
// it on in its own messages. Nodes judged whose clock was out of step by
// those stamps, so a node whose calendar is in step with most of its peers
// was blamed for a third node's: here node 0's calendar runs 450 ms ahead
// and node 2's 100 ms behind (a max offset of 500 ms). Node 1 relays node
// 0's time, node 2 dropped node 1's messages as too far ahead, and node 2
// refused writes as "behind the clocks of nodes 0, 1", while node 1's
// status showed node 2's clock out of step, though the two calendars are
// 100 ms apart (found by review). Peers now judge each other's calendar
// readings, which their messages carry beside the hybrid stamps.
func TestOutOfStepJudgesCalendarsNotRelayedStamps(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.skew[0] = int64(450 * time.Millisecond)
	w.skew[2] = -int64(100 * time.Millisecond)
	w.restart(0, false)
	w.restart(2, false)
	w.run(3 * time.Second)
	v := "x"
	for i := range 300 {
		w.nodes[0].HandleRequest(&core.Request{Op: core.OpSet, Key: fmt.Sprintf("a%d", i), Value: &v}, func(core.Response) {})
		w.nodes[1].HandleRequest(&core.Request{Op: core.OpSet, Key: fmt.Sprintf("b%d", i), Value: &v}, func(core.Response) {})
		w.run(20 * time.Millisecond)
	}
	// Nodes 1 and 2 are in step with each other, so each with most of
	// the peers it hears: both take writes.
	for _, id := range []core.NodeID{1, 2} {
		if r := w.do(id, &core.Request{Op: core.OpSet, Key: "probe", Value: &v}); !r.OK {
			t.Errorf("node %d refused a write: %s: %s", id, r.Error.Code, r.Error.Message)
		}
	}
	// Only nodes 0 and 2 are more than the max offset apart (550 ms), and
	// each status says so of the other alone.
	want := map[core.NodeID][2]string{0: {"", "ahead"}, 1: {"", ""}, 2: {"behind", ""}}
	for id := range core.NodeID(3) {
		st := w.status(id)
		if got := [2]string{st.Peers[0].Clock, st.Peers[1].Clock}; got != want[id] {
			t.Errorf("node %d's status of its peers' clocks (nodes %d, %d): %q; want %q", id, st.Peers[0].NodeID, st.Peers[1].NodeID, got, want[id])
		}
	}
}

// A peer's word that it refused a calendar reading of this node's beyond
// this node's calendar is not believed: no such reading was sent (a
// damaged or confused peer's), and taking it would stop a node in step
// with every peer from taking writes.
func TestCalendarRefusalBeyondTheCalendarIsNotBelieved(t *testing.T) {
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second)
	for range 20 {
		beyond := w.clk.Wall() + int64(time.Hour)
		w.nodes[0].HandleMessage(1, w.nodes[1].CalendarFor(0, beyond))
		w.nodes[0].HandleMessage(2, w.nodes[2].CalendarFor(0, beyond))
		w.run(50 * time.Millisecond)
	}
	w.set(0, "a", "in step")
	if st := w.status(0); st.Peers[0].Clock != "" || st.Peers[1].Clock != "" {
		t.Fatalf("node 0's status of its peers' clocks: %q, %q; want in step", st.Peers[0].Clock, st.Peers[1].Clock)
	}
}

package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A restarted node numbers its anti-entropy rounds above every round of
// its earlier life. Its peers' answers to that life's rounds still arrive
// after the restart (the peer transport keeps a down peer's messages
// queued and sends them on the next connection); rounds used to be
// numbered from 1 at every start, so such an answer was taken for the
// current round's: a push-ack ended a round whose push the peer never
// held, the pass completed, and the peer, told so, raised its refusal
// point above the items it lacked and refused them for good (found by
// review).
func TestAnswerToAnEarlierLifesRoundIsNotTaken(t *testing.T) {
	w := newWorld(t, 2, nil)
	w.run(3 * time.Second) // the two join
	// Node 0's writes reach node 1 only by anti-entropy; node 1's answers
	// to node 0's pushes are kept, to deliver again later.
	var stale [][]byte
	dropPush := false
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if from == 0 && to == 1 && (b[0] == mesh.KindReplicate || dropPush && (b[0] == mesh.KindPush || b[0] == mesh.KindPushAck)) {
			return -1
		}
		return time.Millisecond
	}
	w.tap = func(m wmsg) {
		if m.from == 1 && m.to == 0 && m.b[0] == mesh.KindPushAck {
			stale = append(stale, m.b)
		}
	}
	for i := range 30 {
		w.set(0, fmt.Sprintf("warm%d", i), "v")
		w.run(300 * time.Millisecond)
	}
	if len(stale) == 0 {
		t.Fatal("node 1 answered no push")
	}
	// Now node 0's pushes, and its answers to node 1's pulls, are lost
	// too: node 1 never holds "lost".
	dropPush = true
	lost := w.set(0, "lost", "v")
	w.run(time.Second)
	w.tap = nil
	w.restart(0, false)
	// Whenever node 0 pushes, the answers to its earlier life's pushes
	// arrive.
	pushed := false
	w.tap = func(m wmsg) {
		if m.from == 0 && m.to == 1 && m.b[0] == mesh.KindPush {
			pushed = true
		}
	}
	for i := 0; i < 10_000 && w.nodes[1].Refuse().Less(lost); i++ {
		w.step()
		if pushed {
			pushed = false
			for _, b := range stale {
				w.nodes[0].HandleMessage(1, b)
			}
			w.flush()
		}
	}
	if !w.nodes[1].Refuse().Less(lost) {
		t.Fatalf("node 1's refusal point %s passed the write %s it never received", w.nodes[1].Refuse(), lost)
	}
	w.latency, w.tap = nil, nil
	w.run(10 * time.Second)
	if got := w.held(1, "lost"); got == "absent" {
		t.Fatalf("node 1 lacks the write %s 10 s after the network healed (refusal point %s)", lost, w.nodes[1].Refuse())
	}
}

package mesh_test

import (
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A peer's acknowledgement names the write by its stamp, so one of a write
// from before a restart (queued while the node was down, delivered after)
// does not count for a new write. Waits used to be named by a counter that
// restarted at 1: a quorum-3 write was answered ok while only the node that
// took it held it (found by review).
func TestQuorumAckOfAnEarlierLifeIsNotCounted(t *testing.T) {
	const A, B, C = 0, 1, 2
	w := newWorld(t, 3, nil)
	w.run(2 * time.Second)

	// Hold the peers' acknowledgements to A (B's and C's queues while A is down).
	var held []wmsg
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if to == A && b[0] == mesh.KindReplicateAck {
			held = append(held, wmsg{from: from, to: to, b: append([]byte(nil), b...)})
			return -1
		}
		return time.Millisecond
	}
	v1 := "v1"
	w.nodes[A].HandleRequest(&core.Request{Op: core.OpSet, Key: "k1", Value: &v1, Quorum: 3}, func(core.Response) {})
	w.run(20 * time.Millisecond)
	if len(held) != 2 {
		t.Fatalf("%d acknowledgements of the first write held; want 2", len(held))
	}
	w.restart(A, false)

	// A is now cut off from B and C (its messages to them are lost).
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if from == A {
			return -1
		}
		return time.Millisecond
	}
	v2 := "v2"
	var got *core.Response
	w.nodes[A].HandleRequest(&core.Request{Op: core.OpSet, Key: "k2", Value: &v2, Quorum: 3}, func(r core.Response) { got = &r })
	w.step()
	// The peers' queued acknowledgements reach A after it restarted.
	for _, m := range held {
		w.nodes[A].HandleMessage(m.from, m.b)
	}
	w.flush()
	w.step()
	if got != nil && got.OK {
		_, onB := w.nodes[B].Get("k2")
		_, onC := w.nodes[C].Get("k2")
		t.Fatalf("quorum-3 write of k2 answered ok (stamp %s); B holds it: %v, C holds it: %v", got.Stamp, onB, onC)
	}
}

// A peer acknowledges only the quorum writes it holds: one it refused (at
// or below its refusal point, for a key it lacks) does not count. Peers
// used to acknowledge every replicate, refused or not (found by review).
func TestRefusedWriteIsNotAcknowledged(t *testing.T) {
	const A, B = 0, 1
	w := newWorld(t, 3, nil)
	w.run(5 * time.Second)
	refuse := w.nodes[B].Refuse()
	if refuse.IsZero() {
		t.Fatal("B has no refusal point after 5 s")
	}
	// A write of A's at B's refusal point, for a key B lacks: B refuses
	// it. Another above it, which B takes, in the same replicate.
	old := mesh.Stamp{Wall: refuse.Wall, Logical: refuse.Logical, Node: A}
	if !old.Less(refuse) && old != refuse {
		old = mesh.Stamp{Wall: refuse.Wall - 1, Node: A}
	}
	now := w.set(A, "warm", "up") // a stamp above B's refusal point
	newer := mesh.Stamp{Wall: now.Wall, Logical: now.Logical + 1, Node: A}
	items := []mesh.Item{{Key: "refused", Stamp: old, Value: "r"}, {Key: "taken", Stamp: newer, Value: "t"}}
	var acked []mesh.Stamp
	w.tap = func(m wmsg) {
		if m.from == B && m.to == A {
			acked = append(acked, mesh.AckedStamps(m.b)...)
		}
	}
	w.nodes[B].HandleMessage(A, w.nodes[A].ReplicateFor(B, items, []mesh.Stamp{old, newer}))
	w.flush()
	w.run(10 * time.Millisecond)
	if _, ok := w.nodes[B].Get("refused"); ok {
		t.Fatalf("B took a write at %s, at or below its refusal point %s, for a key it lacked", old, refuse)
	}
	if _, ok := w.nodes[B].Get("taken"); !ok {
		t.Fatalf("B did not take a write at %s, above its refusal point %s", newer, refuse)
	}
	if len(acked) != 1 || acked[0] != newer {
		t.Fatalf("B acknowledged %v; want only the write it holds, %s (not the refused %s)", acked, newer, old)
	}
}

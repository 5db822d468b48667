package mesh_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"dkv/core"
	"dkv/mesh"
)

// A node catching up from nothing (a wiped directory) answers its peer's
// digest with a summary that lists few keys and covers every bucket. The
// peer's handling of that summary must cost what it can send in one round
// (PushBytesMax), not a walk of its whole store: the catch-up takes a
// round per PushBytesMax of data, and a walk of the store in each made it
// quadratic, the healthy node's loop stalled in every round (found by
// review).
func TestSummaryOfAnEmptyPeerCostsAPushNotTheStore(t *testing.T) {
	const keys = 40_000
	w := newWorld(t, 2, func(c *mesh.Config) { c.PushBytesMax = 16 << 10 })
	w.run(3 * time.Second) // the two join
	w.down[1] = true
	for i := 0; i < keys; i += 500 {
		var items []core.KV
		for j := i; j < i+500; j++ {
			items = append(items, core.KV{Key: fmt.Sprintf("key%08d", j), Value: "some value of a key"})
		}
		if r := w.do(0, &core.Request{Op: core.OpBulkSet, Items: items}); !r.OK {
			t.Fatalf("bulk_set: %+v", r.Error)
		}
	}
	// Node 1 comes back on an empty directory; its summaries to node 0
	// are held here and handed over by hand.
	var summaries [][]byte
	w.latency = func(from, to core.NodeID, b []byte) time.Duration {
		if from == 1 && to == 0 && b[0] == mesh.KindSummary {
			summaries = append(summaries, b)
			return -1
		}
		return time.Millisecond
	}
	w.restart(1, true)
	for i := 0; i < 3000 && len(summaries) == 0; i++ {
		w.step()
	}
	if len(summaries) == 0 {
		t.Fatal("node 1 sent node 0 no summary")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	w.nodes[0].HandleMessage(1, summaries[len(summaries)-1])
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("handling the summary allocated %d bytes in %d allocations, in %v", allocated, after.Mallocs-before.Mallocs, took)
	if allocated > 1<<20 {
		t.Fatalf("handling one summary allocated %d bytes for a push of at most %d: it walked the store", allocated, 16<<10)
	}
	// And the catch-up completes.
	w.latency = nil
	for i := 0; i < 600; i++ {
		w.run(100 * time.Millisecond)
		if w.do(1, &core.Request{Op: core.OpStatus}).Status.Keys == keys {
			break
		}
	}
	for i := 0; i < keys; i += 997 {
		k := fmt.Sprintf("key%08d", i)
		if got := w.held(1, k); got == "absent" {
			t.Fatalf("node 1 did not catch up: %s is %s", k, got)
		}
	}
	if got := w.do(1, &core.Request{Op: core.OpStatus}).Status.Keys; got != keys {
		t.Fatalf("node 1 holds %d keys after catching up, want %d", got, keys)
	}
}

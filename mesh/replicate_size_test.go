package mesh_test

import (
	"strings"
	"testing"

	"dkv/core"
	"dkv/mesh"
)

// A replicate message holds a batch's writes of 4 MiB in all, or one
// larger write alone: never a large write and the writes after it, which
// could take a write of mesh.WriteBytesMax past a peer's frame limit,
// where the transport drops the message (found by review: a message held
// the write that overflowed the last one, uncounted, and up to 4 MiB of
// writes after it).
func TestReplicateMessageHoldsALargeWriteAlone(t *testing.T) {
	w := newWorld(t, 2, func(c *mesh.Config) { c.Limits.ValueBytesMax = 16 << 20 })
	largest := 0
	w.tap = func(m wmsg) {
		if m.from == 0 {
			largest = max(largest, len(m.b))
		}
	}
	// One batch: a small write, a write of 8 MiB, then 3 MiB more.
	values := []string{"s", strings.Repeat("b", 8<<20), strings.Repeat("c", 3<<20)}
	answered := 0
	for i, v := range values {
		w.nodes[0].HandleRequest(&core.Request{Op: core.OpSet, Key: string(rune('a' + i)), Value: &v},
			func(r core.Response) {
				if !r.OK {
					t.Errorf("set: %+v", r.Error)
				}
				answered++
			})
	}
	for i := 0; answered < len(values) && i < 1000; i++ {
		w.step()
	}
	if answered < len(values) {
		t.Fatal("the writes were not answered")
	}
	if want := 8<<20 + 64<<10; largest > want {
		t.Errorf("a message of %d bytes went to a peer; a write of 8 MiB goes alone, in at most %d", largest, want)
	}
}

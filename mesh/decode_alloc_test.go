package mesh

import (
	"encoding/binary"
	"runtime"
	"testing"
)

// A message a peer sends cannot make this node allocate many times its
// size: a push of 8 MiB listing 4M pulls of one-byte keys (each 2 bytes
// on the wire, a 16-byte string header once decoded) used to cost 128 MiB
// and as much again as the slice grew, on the node's own loop, and a 64
// MiB frame of them 1 GiB (found by review). An honest push pulls at most
// one summary's keys; a summary lists at most SummaryItemsMax, and
// differing buckets, at most every bucket.
func TestDecodingAPeerMessageAllocatesLittleMoreThanItsSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b []byte) []byte
	}{
		{"push of one-byte pulls", func(b []byte) []byte {
			b = appendHeader(b, &header{kind: msgPush})
			b = binary.LittleEndian.AppendUint64(b, 1)
			b = binary.AppendUvarint(b, 0) // no items
			const n = 4 << 20
			b = binary.AppendUvarint(b, n)
			for range n {
				b = append(b, 1, 'k')
			}
			return b
		}},
		{"summary of one-byte keys", func(b []byte) []byte {
			b = appendHeader(b, &header{kind: msgSummary})
			b = binary.LittleEndian.AppendUint64(b, 1)
			b = appendCursor(b, cursor{})
			b = appendCursor(b, cursor{bucket: bucketsN})
			b = appendBool(b, false)
			b = binary.AppendUvarint(b, 0) // no buckets
			const n = 1 << 20
			b = binary.AppendUvarint(b, n)
			for range n {
				b = append(b, 1, 'k')
				b = appendStamp(b, Stamp{Wall: 1})
				b = appendBool(b, false)
			}
			return b
		}},
	} {
		frame := tc.build(nil)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := decodeMessage(frame)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		if alloc > 4*uint64(len(frame)) {
			t.Errorf("%s: decoding a %d-byte message allocated %d bytes (%v)", tc.name, len(frame), alloc, err)
		}
		_ = m
	}
}

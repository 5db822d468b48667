package mesh

import (
	"container/heap"
	"strings"

	"dkv/core"
)

// ascendLive calls f for every live key at or after from, in key order,
// with its value, until f returns false: a scan's walk (core.ScanResponse).
//
// The store orders its keys by bucket first (storeKey), for anti-entropy,
// so the walk merges the buckets: a cursor per bucket on its next live key,
// the smallest taken each step. It costs a seek per bucket and one per key
// taken, about a millisecond a page on a large store: a price for scans,
// which nothing on the write or get path pays, where a second index in key
// order would cost every write and a copy of every key.
func (r *replica) ascendLive(prefix, from string, f func(key, value string) bool) {
	ascendLive(r.store, prefix, from, MutNone, f)
}

// ascendLive is replica.ascendLive over a store of the replica's layout:
// its own, or a consistent scan's view of it; mut is the node's planted
// bug (MutScanTombEndsBucket).
func ascendLive(store *core.Store, prefix, from string, mut Mutation, f func(key, value string) bool) {
	h := make(scanHeap, 0, bucketsN)
	for b := range bucketsN {
		if c, ok := nextLive(store, b, prefix, from, false, mut); ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		c := h[0]
		if !f(c.key, c.value) {
			return
		}
		if next, ok := nextLive(store, c.bucket, prefix, c.key, true, mut); ok {
			h[0] = next
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
}

// nextLive finds bucket b's first live key at or after from (after it, if
// strictly) that starts with prefix. A bucket's keys are in order, so the
// walk stops at the first key past the prefix rather than reading the
// tombstones beyond it.
func nextLive(store *core.Store, b int, prefix, from string, strictly bool, mut Mutation) (scanCursor, bool) {
	var c scanCursor
	found := false
	bucket := string([]byte{byte(b >> 8), byte(b)})
	store.Ascend(bucket+from, func(sk, v string) bool {
		if bucketOfStoreKey(sk) != b {
			return false
		}
		key := userKey(sk)
		if !strings.HasPrefix(key, prefix) {
			return false
		}
		if strictly && key == from {
			return true
		}
		it, err := decodeVersion(key, v)
		assert(err == nil, "replica holds a malformed version")
		if it.Tomb {
			return mut != MutScanTombEndsBucket
		}
		c, found = scanCursor{key: key, value: it.Value, bucket: b}, true
		return false
	})
	return c, found
}

// scanCursor is a bucket's next live key in a merge.
type scanCursor struct {
	key, value string
	bucket     int
}

// scanHeap orders scan cursors by key; keys are unique across buckets.
type scanHeap []scanCursor

func (h scanHeap) Len() int           { return len(h) }
func (h scanHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h scanHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *scanHeap) Push(x any)        { *h = append(*h, x.(scanCursor)) }
func (h *scanHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

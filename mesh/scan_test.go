package mesh

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"dkv/core"
)

// The merged walk over the buckets visits the live keys with the prefix in
// key order from where it starts, each once, tombstones left out, with
// their values. Thousands of keys put several in a bucket, with
// tombstones between them.
func TestAscendLiveIsKeyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := newReplica(core.NewStore())
		live := map[string]string{}
		keys := rapid.IntRange(1, 3000).Draw(t, "key space")
		for i := range rapid.IntRange(0, 4000).Draw(t, "n") {
			it := Item{Key: fmt.Sprintf("k%d", rapid.IntRange(0, keys-1).Draw(t, "key")), Stamp: Stamp{Wall: int64(i + 1)}}
			if rapid.IntRange(0, 2).Draw(t, "tomb") == 0 {
				it.Tomb = true
				delete(live, it.Key)
			} else {
				it.Value = fmt.Sprintf("v%d", i)
				live[it.Key] = it.Value
			}
			r.apply(&it, nil)
		}
		prefix := rapid.SampledFrom([]string{"", "k", "k1", "k12", "k2", "x"}).Draw(t, "prefix")
		from := prefix + rapid.StringMatching(`[0-9]{0,3}`).Draw(t, "from")
		var wantKeys []string
		for k := range live {
			if k >= from && strings.HasPrefix(k, prefix) {
				wantKeys = append(wantKeys, k)
			}
		}
		slices.Sort(wantKeys)
		want := make([]string, len(wantKeys))
		for i, k := range wantKeys {
			want[i] = k + "=" + live[k]
		}
		stop := rapid.IntRange(1, len(want)+1).Draw(t, "stop after")
		var got []string
		r.ascendLive(prefix, from, func(key, value string) bool {
			got = append(got, key+"="+value)
			return len(got) < stop
		})
		if len(want) > stop {
			want = want[:stop]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("walked %d keys, want %d: %s, want %s", len(got), len(want), strings.Join(got, " "), strings.Join(want, " "))
		}
	})
}

// BenchmarkScanPage measures a page of 100 keys from a replica of 100,000
// and of 1,000,000, from a start in the middle: the bucket merge's cost,
// which docs/ARCHITECTURE.md quotes.
func BenchmarkScanPage(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%d keys", n), func(b *testing.B) {
			r, _ := newReplica(core.NewStore())
			for i := range n {
				it := Item{Key: fmt.Sprintf("key%08d", i), Stamp: Stamp{Wall: int64(i + 1)}, Value: "value"}
				r.apply(&it, nil)
			}
			req := &core.Request{Op: core.OpScan, Prefix: "key", StartAfter: fmt.Sprintf("key%08d", n/2), Limit: 100}
			b.ResetTimer()
			for b.Loop() {
				ascend := func(from string, f func(key, value string) bool) { r.ascendLive(req.Prefix, from, f) }
				if resp := core.ScanResponse(req, ascend, nil, 1<<20); len(resp.Items) != 100 {
					b.Fatalf("%d items", len(resp.Items))
				}
			}
		})
	}
}

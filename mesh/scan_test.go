package mesh

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"dkv/core"
)

// The merged walk over the buckets visits the live keys in key order from
// where it starts, each once, tombstones left out, with their values.
func TestAscendLiveIsKeyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := newReplica(core.NewStore())
		live := map[string]string{}
		for i := range rapid.IntRange(0, 60).Draw(t, "n") {
			it := Item{Key: rapid.StringMatching(`[a-c]{1,4}`).Draw(t, "key"), Stamp: Stamp{Wall: int64(i + 1)}}
			if rapid.IntRange(0, 3).Draw(t, "tomb") == 0 {
				it.Tomb = true
				delete(live, it.Key)
			} else {
				it.Value = rapid.StringMatching(`[xyz]{0,3}`).Draw(t, "value")
				live[it.Key] = it.Value
			}
			r.apply(&it, nil)
		}
		from := rapid.StringMatching(`[a-c]{0,3}`).Draw(t, "from")
		var want []string
		for k, v := range live {
			if k >= from {
				want = append(want, k+"="+v)
			}
		}
		slices.Sort(want)
		stop := rapid.IntRange(1, len(want)+1).Draw(t, "stop after")
		var got []string
		r.ascendLive(from, func(key, value string) bool {
			got = append(got, key+"="+value)
			return len(got) < stop
		})
		if len(want) > stop {
			want = want[:stop]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("walked %s, want %s", strings.Join(got, " "), strings.Join(want, " "))
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
				if resp := core.ScanResponse(req, r.ascendLive, 1<<20); len(resp.Items) != 100 {
					b.Fatalf("%d items", len(resp.Items))
				}
			}
		})
	}
}

package main

import (
	"fmt"
	"testing"

	"dkv/core"
)

// A search without a count takes the default within --max-hits: with a
// --max-hits under the defaults (10 hits, 5 for search_similar), every
// search without a limit was refused ("bad limit: 10 is over the limit of
// 3") and search_similar answered 5 hits.
func TestIndexesDefaultCountsWithinMaxHits(t *testing.T) {
	limits := core.DefaultLimits()
	limits.HitsMax = 3
	idx, err := newIndexes("", limits, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	idx.Reset()
	for i := range 8 {
		idx.Put(fmt.Sprintf("k%d", i), "ocean waves")
	}
	idx.Loaded()
	for _, req := range []core.Request{
		{Op: core.OpSearch, Query: "ocean"},
		{Op: core.OpSearchSimilar, Query: "sea"},
	} {
		resp := idx.Search(&req)
		if !resp.OK || len(resp.Hits) != limits.HitsMax {
			t.Errorf("%s without a count, --max-hits %d: %d hits, %+v; want %d", req.Op, limits.HitsMax, len(resp.Hits), resp.Error, limits.HitsMax)
		}
	}
}

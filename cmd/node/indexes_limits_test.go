package main

import (
	"fmt"
	"strings"
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

// A search_similar whose query has no vector says why: one of stop words
// only was told that none of its words is in the embedding model, which
// holds them all.
func TestSimilarQueryWithoutVectorSaysWhy(t *testing.T) {
	idx, err := newIndexes("", core.DefaultLimits(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	idx.Reset()
	idx.Put("k", "ocean waves")
	idx.Loaded()
	for _, c := range []struct{ query, says string }{
		{"the of", "every word of the query is a stop word"},
		{"qqxzv zzkqw", "no word of the query is in the embedding model"},
		{"sea\x01\x02", "the query looks binary"},
	} {
		req := core.Request{Op: core.OpSearchSimilar, Query: c.query}
		resp := idx.Search(&req)
		if resp.OK || resp.Error.Code != core.CodeBadRequest || !strings.Contains(resp.Error.Message, c.says) {
			t.Errorf("search_similar %q: %+v; want bad_request saying %q", c.query, resp.Error, c.says)
		}
	}
}

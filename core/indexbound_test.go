package core_test

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/internal/indexes"
)

// realIndexes are the server's search indexes over the built-in model.
func realIndexes(t *testing.T) core.Indexes {
	t.Helper()
	cfg, err := indexes.BuiltInConfig()
	if err != nil {
		t.Fatal(err)
	}
	return indexes.New(cfg)
}

// A single node with a bound on its indexes' memory (Limits.IndexBytesMax)
// refuses the writes that set values once the indexes hold that much, by
// their own estimate, and goes on taking deletes, which make room. The
// data bound does not see it: short values of common words cost the
// indexes some 40 times their data bytes (a value's embedding alone is
// about 950 bytes), and without the bound a node ran out of memory
// within its data bound (found by review).
func TestSingleNodeRefusesWritesPastItsIndexBound(t *testing.T) {
	cfg := core.DefaultSingleConfig()
	idx := realIndexes(t)
	cfg.Indexes = idx
	cfg.Limits.IndexBytesMax = 1 << 20
	h := newHarness(t, cfg)
	refusedAt := -1
	for i := range 10_000 {
		r := h.do(set(fmt.Sprintf("k%05d", i), "river bank"))
		if !r.OK {
			wantStoreFull(t, "a set past the index bound", r)
			if !strings.Contains(r.Error.Message, "--max-index-bytes") {
				t.Fatalf("the refusal does not name the bound: %s", r.Error.Message)
			}
			refusedAt = i
			break
		}
	}
	if refusedAt < 0 {
		t.Fatalf("10,000 values of two words fit in a bound of 1 MiB of indexes (they hold %d bytes)", idx.Bytes())
	}
	data := h.node.Store().DataBytes()
	t.Logf("refused at value %d: %d data bytes, the indexes %d bytes", refusedAt, data, idx.Bytes())
	if data*10 > cfg.Limits.IndexBytesMax {
		t.Fatalf("the indexes reached 1 MiB with %d data bytes: the bound tests nothing the data bound would not", data)
	}
	wantMissing(t, h, fmt.Sprintf("k%05d", refusedAt))
	wantStoreFull(t, "a bulk set", h.do(bulk("a", "x", "b", "y")))
	wantStoreFull(t, "an overwrite", h.do(set("k00000", "water")))
	st := h.do(&core.Request{Op: core.OpStatus}).Status
	if st.IndexBytesMax != 1<<20 || st.Indexes == nil || st.Indexes.TextBytes+st.Indexes.VectorBytes < 1<<20 {
		t.Fatalf("status: max_index_bytes %d, indexes %+v", st.IndexBytesMax, st.Indexes)
	}
	// Deletes go on, and make room once the indexes count again.
	for i := range refusedAt {
		mustOK(t, h.do(del(fmt.Sprintf("k%05d", i))))
	}
	mustOK(t, h.do(set("after", "river bank")))
}

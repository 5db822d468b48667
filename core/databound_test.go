package core_test

import (
	"strings"
	"testing"

	"dkv/core"
)

func wantStoreFull(t *testing.T, what string, r core.Response) {
	t.Helper()
	if r.OK || r.Error == nil || r.Error.Code != core.CodeStoreFull {
		t.Fatalf("%s: got %+v, want store_full", what, r)
	}
}

// A single node with a bound on its data bytes refuses the writes that
// would pass it, applies none of them (nor after a restart), and goes on
// taking the writes that do not grow the store: deletes, shorter values,
// and a bulk set that shrinks it.
func TestSingleNodeRefusesWritesPastItsDataBound(t *testing.T) {
	cfg := core.DefaultSingleConfig()
	// Room for two keys of 100-byte values and a little more.
	cfg.Limits.DataBytesMax = 2*core.EntryDataBytes(2, 100) + 50
	h := newHarness(t, cfg)
	v100 := strings.Repeat("v", 100)
	mustOK(t, h.do(set("k1", v100)))
	mustOK(t, h.do(set("k2", v100)))
	wantStoreFull(t, "a third key", h.do(set("k3", v100)))
	wantStoreFull(t, "a longer value", h.do(set("k1", v100+strings.Repeat("w", 51))))
	wantStoreFull(t, "a bulk set that grows", h.do(bulk("k1", v100[:90], "k3", v100)))
	incr := &core.Request{Op: core.OpIncr, Key: "counter"}
	mustOK(t, h.do(incr)) // 7 + 1 + 32 bytes: there is room for one
	wantStoreFull(t, "an incr of a new key", h.do(&core.Request{Op: core.OpIncr, Key: "counter2"}))
	ttl := set("k4", "x")
	ttl.TTLMs = 60_000
	wantStoreFull(t, "a set with a ttl", h.do(ttl))
	// Writes that do not grow the store are taken, full as it is.
	mustOK(t, h.do(set("k1", v100[:10])))
	mustOK(t, h.do(bulk("k2", v100[:50], "k1", "")))
	st := h.do(&core.Request{Op: core.OpStatus}).Status
	if st.DataBytesMax != cfg.Limits.DataBytesMax || st.DataBytes != h.node.Store().DataBytes() {
		t.Fatalf("status says %d of %d data bytes; the store holds %d of %d", st.DataBytes, st.DataBytesMax, h.node.Store().DataBytes(), cfg.Limits.DataBytesMax)
	}
	// Deleting makes room.
	mustOK(t, h.do(del("k2")))
	mustOK(t, h.do(set("k3", v100)))
	if err := h.restart(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, h, "k1", "")
	wantMissing(t, h, "k2")
	wantValue(t, h, "k3", v100)
	wantMissing(t, h, "k4")
	wantMissing(t, h, "counter2")
	if err := h.node.Store().CheckDataBytes(); err != nil {
		t.Fatal(err)
	}
	wantStoreFull(t, "after the restart", h.do(set("k5", v100)))
}

// The open batch's writes count: two writes of one turn that each fit
// alone but not together are one taken and one refused.
func TestSingleNodeDataBoundCountsTheOpenBatch(t *testing.T) {
	cfg := core.DefaultSingleConfig()
	v := strings.Repeat("v", 200)
	cfg.Limits.DataBytesMax = core.EntryDataBytes(1, len(v)) + 10
	h := newHarness(t, cfg)
	resps, err := h.turn(set("a", v), set("b", v))
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, resps[0])
	wantStoreFull(t, "the second write of the turn", resps[1])
	wantMissing(t, h, "b")
}

package core_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/sim"
)

func scanReq(limit uint64, view string, consistent bool) *core.Request {
	return &core.Request{Op: core.OpScan, Limit: limit, View: view, Consistent: consistent}
}

// pageKeys is a scan answer's keys, with their values as k=v.
func pageKeys(t *testing.T, r core.Response) []string {
	t.Helper()
	if !r.OK {
		t.Fatalf("scan: %+v", r.Error)
	}
	var out []string
	for _, kv := range r.Items {
		out = append(out, kv.Key+"="+kv.Value)
	}
	return out
}

// A consistent scan's pages read the store of its first page's instant,
// whatever is written between them, and survive nothing but their limits.
func TestConsistentScanReadsOneInstant(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(bulk("a", "1", "b", "1", "c", "1", "d", "1", "e", "1")))

	first := h.do(scanReq(2, "", true))
	if got := pageKeys(t, first); !slices.Equal(got, []string{"a=1", "b=1"}) || first.View == "" || !*first.More {
		t.Fatalf("first page %v, view %q, more %v", got, first.View, *first.More)
	}
	// Writes after the first page: behind it, ahead of it, a new key and a
	// deleted one. The walk does not see them.
	mustOK(t, h.do(set("a", "2")))
	mustOK(t, h.do(set("c", "2")))
	mustOK(t, h.do(set("cc", "2")))
	mustOK(t, h.do(del("d")))
	var walk []string
	view := first.View
	for view != "" {
		r := h.do(&core.Request{Op: core.OpScan, Limit: 2, View: view, StartAfter: strings.Split(lastOf(walk, "b=1"), "=")[0]})
		walk = append(walk, pageKeys(t, r)...)
		if *r.More != (r.View != "") || r.View != "" && r.View != view {
			t.Fatalf("page after %v: more %v, view %q (the walk's is %q)", walk, *r.More, r.View, view)
		}
		view = r.View
	}
	if !slices.Equal(walk, []string{"c=1", "d=1", "e=1"}) {
		t.Fatalf("the walk after the first page read %v, want the first instant's c=1 d=1 e=1", walk)
	}
	// A plain scan sees the writes.
	if got := pageKeys(t, h.do(scanReq(10, "", false))); !slices.Equal(got, []string{"a=2", "b=1", "c=2", "cc=2", "e=1"}) {
		t.Fatalf("a plain scan read %v", got)
	}
	// A consistent scan that fits one page opens no view.
	if r := h.do(scanReq(10, "", true)); r.View != "" || *r.More {
		t.Fatalf("a whole scan in one page named view %q", r.View)
	}
}

func lastOf(s []string, or string) string {
	if len(s) == 0 {
		return or
	}
	return s[len(s)-1]
}

// A view unused for a minute, or open for ten, is gone: its pages are
// answered scan_expired. So is a view id of another process.
func TestScanViewsExpire(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(bulk("a", "1", "b", "1", "c", "1")))
	expired := func(view string) {
		t.Helper()
		r := h.do(scanReq(1, view, false))
		if r.OK || r.Error.Code != core.CodeScanExpired {
			t.Fatalf("page of view %s: %+v, want scan_expired", view, r)
		}
	}
	idle := h.do(scanReq(1, "", true)).View
	busy := h.do(scanReq(1, "", true)).View
	for range 10 {
		h.clock.now += int64(59 * time.Second)
		if r := h.do(scanReq(1, busy, false)); !r.OK {
			t.Fatalf("a view in use went: %+v", r.Error)
		}
	}
	expired(idle)
	h.clock.now += int64(59 * time.Second) // used 59 s ago, but open for more than ten minutes
	expired(busy)

	kept := h.do(scanReq(1, "", true)).View
	if err := h.crash(); err != nil {
		t.Fatal(err)
	}
	expired(kept)
}

// At most 64 views are kept: opening one more drops the least recently
// used.
func TestScanViewsAreBounded(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(bulk("a", "1", "b", "1")))
	var views []string
	for range 64 {
		views = append(views, h.do(scanReq(1, "", true)).View)
	}
	mustOK(t, h.do(scanReq(1, views[0], false))) // the oldest is now the most recently used
	h.do(scanReq(1, "", true))                   // drops views[1]
	if r := h.do(scanReq(1, views[1], false)); r.OK || r.Error.Code != core.CodeScanExpired {
		t.Fatalf("the least recently used view survived a 65th: %+v", r)
	}
	for _, v := range append(views[:1:1], views[2:]...) {
		mustOK(t, h.do(scanReq(1, v, false)))
	}
}

// A view opened after a write of its batch holds that write; if the batch
// fails to persist, the view goes with it (and the page that opened it is
// failed as a read of the batch is). One opened before the batch's first
// write is kept.
func TestScanViewOfAFailedBatchIsDropped(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(bulk("a", "1", "b", "1", "c", "1")))
	h.disk.SetFaults(sim.DiskFaults{CapacityBytes: 200})
	resps, err := h.turn(scanReq(1, "", true), set("big", strings.Repeat("x", 500)), scanReq(1, "", true))
	if err != nil {
		t.Fatal(err)
	}
	if !resps[0].OK || resps[0].View == "" || resps[1].Error.Code != core.CodeDiskFull || resps[2].Error.Code != core.CodeUnavailable {
		t.Fatalf("got %+v / %+v / %+v", resps[0], resps[1].Error, resps[2].Error)
	}
	h.disk.SetFaults(sim.DiskFaults{})
	mustOK(t, h.do(scanReq(1, resps[0].View, false)))
}

func TestScanViewValidation(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	for _, c := range []struct {
		req *core.Request
		msg string
	}{
		{scanReq(1, "ab", true), "not both"},
		{scanReq(1, "not-hex", false), "is not one a scan named"},
		{scanReq(1, "0", false), "is not one a scan named"},
		{scanReq(1, strings.Repeat("f", 17), false), "is not one a scan named"},
	} {
		r := h.do(c.req)
		if r.OK || r.Error.Code != core.CodeBadRequest || !strings.Contains(r.Error.Message, c.msg) {
			t.Errorf("%+v: %+v, want bad_request containing %q", c.req, r.Error, c.msg)
		}
	}
	for _, line := range []string{
		`{"op":"get","key":"k","consistent":true}`,
		`{"op":"bulk_get","keys":["k"],"view":"1"}`,
	} {
		if _, bad := core.DecodeRequest([]byte(line)); bad == nil || !strings.Contains(bad.Error.Message, "is not used by op") {
			t.Errorf("%s: %+v, want refused", line, bad)
		}
	}
	if req, bad := core.DecodeRequest([]byte(`{"op":"scan","consistent":true,"view":"` + fmt.Sprint(12) + `"}`)); bad != nil || !req.Consistent || req.View != "12" {
		t.Errorf("decode: %+v %+v", req, bad)
	}
}

// A view goes when its walk's last page is served, and when it lies idle
// even if no scan comes to sweep it: the node sweeps every turn.
func TestScanViewsAreFreed(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(bulk("a", "1", "b", "1", "c", "1")))
	views := func() int {
		t.Helper()
		r := h.do(&core.Request{Op: core.OpStatus})
		return r.Status.ScanViews
	}
	first := h.do(scanReq(2, "", true))
	if views() != 1 {
		t.Fatalf("%d views after a consistent first page, want 1", views())
	}
	last := h.do(&core.Request{Op: core.OpScan, Limit: 2, StartAfter: "b", View: first.View})
	if *last.More || last.View != "" || views() != 0 {
		t.Fatalf("the last page: more %v, view %q; %d views left, want 0", *last.More, last.View, views())
	}
	if r := h.do(scanReq(2, first.View, false)); r.OK || r.Error.Code != core.CodeScanExpired {
		t.Fatalf("a page of a finished walk: %+v, want scan_expired", r)
	}
	h.do(scanReq(1, "", true)) // a walk abandoned after its first page
	h.clock.now += int64(61 * time.Second)
	mustOK(t, h.do(set("x", "1"))) // a turn without a scan
	if views() != 0 {
		t.Fatalf("%d views a minute after their walk stopped, with no scan since", views())
	}
}

// A walk closed before its last page (close with its view) frees its view
// at once: one abandoned pinned what later writes replace for a minute,
// one of the 64 a node keeps. A close of a view that is gone answers ok;
// close without a view is refused.
func TestScanViewClosed(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(bulk("a", "1", "b", "1", "c", "1")))
	first := h.do(scanReq(1, "", true))
	if first.View == "" || h.do(&core.Request{Op: core.OpStatus}).Status.ScanViews != 1 {
		t.Fatalf("a consistent first page named no view, or keeps none")
	}
	closed := h.do(&core.Request{Op: core.OpScan, View: first.View, Close: true})
	if !closed.OK || len(closed.Items) != 0 || *closed.More || closed.View != "" {
		t.Fatalf("close: %+v", closed)
	}
	if n := h.do(&core.Request{Op: core.OpStatus}).Status.ScanViews; n != 0 {
		t.Fatalf("%d views after the walk's close, want 0", n)
	}
	if r := h.do(scanReq(1, first.View, false)); r.OK || r.Error.Code != core.CodeScanExpired {
		t.Fatalf("a page of a closed walk: %+v, want scan_expired", r)
	}
	mustOK(t, h.do(&core.Request{Op: core.OpScan, View: first.View, Close: true}))
	if r := h.do(&core.Request{Op: core.OpScan, Close: true}); r.OK || r.Error.Code != core.CodeBadRequest {
		t.Fatalf("close without a view: %+v, want bad_request", r)
	}
	if req, bad := core.DecodeRequest([]byte(`{"op":"scan","view":"1f","close":true}`)); bad != nil || !req.Close || req.View != "1f" {
		t.Errorf("decode: %+v %+v", req, bad)
	}
	if _, bad := core.DecodeRequest([]byte(`{"op":"get","key":"k","close":true}`)); bad == nil {
		t.Error("close on a get was taken")
	}
}

// A scan that names no limit reads a page of ScanLimitDefault keys, or of
// --max-bulk-entries where that is less: the flag bounds every page, and
// realnet counts a page's memory by it (replyBytesAhead). The default of
// 100 passed a limit of 5.
func TestScanDefaultPageKeepsTheBulkLimit(t *testing.T) {
	cfg := core.DefaultSingleConfig()
	cfg.Limits.BulkEntriesMax = 5
	h := newHarness(t, cfg)
	for i := range 20 {
		mustOK(t, h.do(set(fmt.Sprintf("k%02d", i), "v")))
	}
	for _, consistent := range []bool{false, true} {
		r := h.do(&core.Request{Op: core.OpScan, KeysOnly: true, Consistent: consistent})
		if !r.OK || len(r.Keys) != 5 || !*r.More {
			t.Fatalf("consistent %v: a scan without a limit read %d keys (more %v), want 5 and more: %+v", consistent, len(r.Keys), r.More != nil && *r.More, r.Error)
		}
	}
	// Where the limit is above the default, the default stays.
	h2 := newHarness(t, core.DefaultSingleConfig())
	for i := range core.ScanLimitDefault + 1 {
		mustOK(t, h2.do(set(fmt.Sprintf("k%03d", i), "v")))
	}
	if r := h2.do(&core.Request{Op: core.OpScan, KeysOnly: true}); len(r.Keys) != core.ScanLimitDefault || !*r.More {
		t.Fatalf("a scan without a limit read %d keys, want %d", len(r.Keys), core.ScanLimitDefault)
	}
}

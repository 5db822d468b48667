package core_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/sim"
)

func setTTL(k, v string, ttl time.Duration) *core.Request {
	r := set(k, v)
	r.TTLMs = uint64(ttl / time.Millisecond)
	return r
}

func ttlOf(k string) *core.Request { return &core.Request{Op: core.OpTTL, Key: k} }

// advance moves the harness's clocks by d a millisecond at a time, running
// the timers that fall due, each millisecond a turn.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	for end := h.clock.now + int64(d); h.clock.now < end; {
		h.clock.now = min(h.clock.now+int64(time.Millisecond), end)
		h.clock.fire()
		if err := h.node.Flush(); err != nil {
			h.t.Fatalf("flush: %v", err)
		}
		if err := h.settle(); err != nil {
			h.t.Fatalf("settle: %v", err)
		}
	}
}

func wantTTL(t *testing.T, h *harness, key string, want time.Duration) {
	t.Helper()
	r := h.do(ttlOf(key))
	switch {
	case !r.OK:
		t.Fatalf("ttl %q: %+v", key, r.Error)
	case want < 0 && r.TTLMs != nil:
		t.Fatalf("ttl %q = %d ms, want none", key, *r.TTLMs)
	case want >= 0 && (r.TTLMs == nil || *r.TTLMs != uint64(want/time.Millisecond)):
		t.Fatalf("ttl %q = %v, want %v", key, r.TTLMs, want)
	}
}

// A key set with ttl_ms is there until its deadline and gone at it; a key
// without one stays; ttl says what is left.
func TestKeysExpire(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("a", "1", 100*time.Millisecond)))
	mustOK(t, h.do(set("b", "2")))
	wantTTL(t, h, "a", 100*time.Millisecond)
	wantTTL(t, h, "b", -1)
	if r := h.do(ttlOf("nope")); r.OK || r.Error.Code != core.CodeNotFound {
		t.Fatalf("ttl of a missing key: %+v, want not_found", r)
	}
	h.advance(99 * time.Millisecond)
	wantValue(t, h, "a", "1")
	wantTTL(t, h, "a", time.Millisecond)
	h.advance(time.Millisecond) // at the deadline: it has lived its TTL only once past it
	wantValue(t, h, "a", "1")
	h.advance(time.Millisecond)
	wantMissing(t, h, "a")
	wantValue(t, h, "b", "2")
	if st := h.node.Store(); st.Expiring() != 0 {
		t.Fatalf("%d keys still expire", st.Expiring())
	}
	// The expiry is a write of the log: it survives a crash.
	if err := h.crash(); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, h, "a")
	wantValue(t, h, "b", "2")
}

// A later write replaces a key's deadline: a set without ttl_ms keeps it
// for good, one with ttl_ms moves the deadline, a bulk_set keeps it for
// good; a delete takes it away.
func TestWritesReplaceDeadlines(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("kept", "1", 50*time.Millisecond)))
	mustOK(t, h.do(set("kept", "2")))
	mustOK(t, h.do(setTTL("moved", "1", 50*time.Millisecond)))
	mustOK(t, h.do(setTTL("moved", "2", 500*time.Millisecond)))
	mustOK(t, h.do(setTTL("bulk", "1", 50*time.Millisecond)))
	mustOK(t, h.do(bulk("bulk", "2")))
	mustOK(t, h.do(setTTL("deleted", "1", 50*time.Millisecond)))
	mustOK(t, h.do(del("deleted")))
	mustOK(t, h.do(set("deleted", "2"))) // written again, for good
	h.advance(100 * time.Millisecond)
	wantValue(t, h, "kept", "2")
	wantValue(t, h, "moved", "2")
	wantValue(t, h, "bulk", "2")
	wantValue(t, h, "deleted", "2")
	wantTTL(t, h, "moved", 400*time.Millisecond)
	h.advance(401 * time.Millisecond)
	wantMissing(t, h, "moved")
}

// Deadlines survive a restart, from the log and from a snapshot; a key
// whose deadline passed while the node was down goes once it is up.
func TestDeadlinesSurviveRestarts(t *testing.T) {
	cfg := core.DefaultSingleConfig()
	cfg.SnapshotLogBytesMin = 2 << 10
	h := newHarness(t, cfg)
	mustOK(t, h.do(setTTL("early", "1", 100*time.Millisecond)))
	mustOK(t, h.do(setTTL("late", "1", time.Hour)))
	// Enough log for a snapshot, which holds both deadlines.
	for i := range 100 {
		mustOK(t, h.do(set("fill"+strings.Repeat("x", i%7), strings.Repeat("v", 64))))
	}
	h.advance(10 * time.Millisecond)
	if h.node.Metrics().Status.SnapshotIndex == 0 {
		t.Fatal("no snapshot was written")
	}
	if err := h.crash(); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, h, "early", 90*time.Millisecond)
	wantTTL(t, h, "late", time.Hour-10*time.Millisecond)
	// Down past the early deadline.
	h.node.Close()
	h.clock.now += int64(time.Second)
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Millisecond)
	wantMissing(t, h, "early")
	wantValue(t, h, "late", "1")
}

// A lease: set if_absent with ttl_ms takes a lock that frees itself.
func TestLeaseFreesItself(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	take := func(who string) core.Response {
		r := setTTL("lock", who, time.Second)
		r.IfAbsent = true
		return h.do(r)
	}
	mustOK(t, take("a"))
	if r := take("b"); r.OK || r.Error.Code != core.CodeConditionFailed {
		t.Fatalf("a second taker: %+v, want condition_failed", r)
	}
	h.advance(time.Second + time.Millisecond)
	mustOK(t, take("b"))
	wantValue(t, h, "lock", "b")
}

// An expiry whose write fails is taken back with its batch: the keys and
// their deadlines are back, and the next turns expire them once the disk
// takes writes again.
func TestFailedExpiryIsRetried(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("a", "1", 10*time.Millisecond)))
	h.disk.SetFaults(sim.DiskFaults{WriteErrorProb: 1})
	h.advance(20 * time.Millisecond)
	wantValue(t, h, "a", "1")
	wantTTL(t, h, "a", 0)
	h.disk.SetFaults(sim.DiskFaults{})
	h.advance(time.Second) // the next look, at most expiryRecheck away
	wantMissing(t, h, "a")
}

// A calendar clock set forward expires keys early by it, within a second
// of the change (the node looks again at least that often); one set back
// keeps them longer.
func TestExpiryFollowsTheCalendarClock(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("fwd", "1", time.Hour)))
	h.clock.wallShift = int64(2 * time.Hour)
	h.advance(time.Second)
	wantMissing(t, h, "fwd")
	mustOK(t, h.do(setTTL("back", "1", 100*time.Millisecond)))
	h.clock.wallShift -= int64(time.Hour)
	h.advance(time.Second)
	wantValue(t, h, "back", "1")
}

func TestTTLValidation(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	for _, c := range []struct {
		req  *core.Request
		code string
	}{
		{&core.Request{Op: core.OpGet, Key: "k", TTLMs: 5}, core.CodeBadRequest},
		{&core.Request{Op: core.OpBulkSet, Items: []core.KV{{Key: "k"}}, TTLMs: 5}, core.CodeBadRequest},
		{setTTL("k", "v", time.Duration(core.TTLMsMax+1)*time.Millisecond), core.CodeBadRequest},
		{&core.Request{Op: core.OpTTL}, core.CodeBadRequest},
		{&core.Request{Op: core.OpBulkSet, Items: []core.KV{{Key: "k", TTLMs: new(uint64(5))}}}, core.CodeBadRequest},
	} {
		if r := h.do(c.req); r.OK || r.Error.Code != c.code {
			t.Errorf("%+v: %+v, want %s", c.req, r, c.code)
		}
	}
	for _, line := range []string{
		`{"op":"set","key":"k","value":"v","ttl_ms":0}`,
		`{"op":"set","key":"k","value":"v","ttl_ms":-1}`,
		`{"op":"set","key":"k","value":"v","ttl_ms":"5"}`,
		`{"op":"get","key":"k","ttl_ms":5}`,
		`{"op":"ttl","key":"k","ttl_ms":5}`,
		`{"op":"bulk_set","items":[{"key":"k","value":"v","ttl_ms":5}]}`,
	} {
		if _, bad := core.DecodeRequest([]byte(line)); bad == nil || bad.Error.Code != core.CodeBadRequest {
			t.Errorf("%s: %+v, want bad_request", line, bad)
		}
	}
	req, bad := core.DecodeRequest([]byte(`{"op":"set","key":"k","value":"v","ttl_ms":1500}`))
	if bad != nil || req.TTLMs != 1500 {
		t.Fatalf("ttl_ms 1500: %+v %+v", req, bad)
	}
}

// While the disk refuses writes, a due key's expiry fails and is taken
// back with its batch; it is tried again after expiryRecheck, not at once:
// it used to be retried every turn, forever, with no time passing, each
// attempt writing and undoing a batch and logging it (found by review).
func TestFailedExpiryBacksOff(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("a", "1", 10*time.Millisecond)))
	h.disk.SetFaults(sim.DiskFaults{WriteErrorProb: 1})
	h.advance(20 * time.Millisecond)
	rounds := 0
	for range 1000 { // the clock does not move
		if h.clock.fire() == 0 {
			break
		}
		rounds++
		if err := h.node.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if rounds > 1 {
		t.Fatalf("%d expiry attempts at one instant: a failed expiry is retried at once", rounds)
	}
}

// Nor does a failing expiry fail the reads of other keys: every turn held
// its write, so a get that shared it was answered unavailable, where a
// node whose disk is full serves reads (found by review).
func TestFailedExpiryKeepsReadsServed(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(set("b", "2")))
	mustOK(t, h.do(setTTL("a", "1", 10*time.Millisecond)))
	h.disk.SetFaults(sim.DiskFaults{WriteErrorProb: 1})
	h.advance(20 * time.Millisecond)
	for i := range 10 {
		h.clock.fire()
		if r := h.do(get("b")); !r.OK {
			t.Fatalf("get %d of an unrelated key, while a due key's expiry cannot be written: %+v", i, r.Error)
		}
	}
}

// An expiry names at most core.ExpireBytesMax bytes of key: 1,024 keys of
// 64 KiB (a node run with --max-key-bytes 65536) due at once made a
// record over the log's limit, and the node panicked on its assertion, at
// every restart again (found by review).
func TestExpiryOfLongKeysFitsARecord(t *testing.T) {
	cfg := core.DefaultSingleConfig()
	cfg.Limits.KeyBytesMax = 64 << 10
	h := newHarness(t, cfg)
	pad := strings.Repeat("k", 64<<10-5)
	for i := range 1024 {
		mustOK(t, h.do(setTTL(fmt.Sprintf("%s%05d", pad, i), "v", 10*time.Millisecond)))
	}
	h.advance(100 * time.Millisecond) // 16 of them a turn, a turn a millisecond here
	if n := h.node.Store().Len(); n != 0 {
		t.Fatalf("%d keys left after their deadline", n)
	}
}

// A key lives its whole TTL: its deadline is a whole millisecond at or
// before the set's instant plus the TTL, and it is due only once the
// clock's millisecond is past it. (Due at it, a ttl_ms of 1 taken 0.9 ms
// into a millisecond went 0.1 ms later; found by review.)
func TestKeyLivesItsWholeTTL(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("b", "1", time.Millisecond))) // arms the timer
	h.clock.now = int64(900 * time.Microsecond)
	mustOK(t, h.do(setTTL("a", "1", time.Millisecond)))
	h.clock.now = int64(1900 * time.Microsecond) // 1.0 ms after the set
	h.clock.fire()
	if err := h.node.Flush(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, h, "a", "1")
	h.advance(2 * time.Millisecond)
	wantMissing(t, h, "a")
}

func expireReq(k string, ttl time.Duration) *core.Request {
	return &core.Request{Op: core.OpExpire, Key: k, TTLMs: uint64(ttl / time.Millisecond)}
}

func persistReq(k string) *core.Request { return &core.Request{Op: core.OpPersist, Key: k} }

// expire gives a key that exists a deadline, its value kept; persist takes
// it away and says what was left; both answer not_found for a key that
// does not exist and write nothing then.
func TestExpireAndPersist(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(set("a", "1")))
	mustOK(t, h.do(expireReq("a", 100*time.Millisecond)))
	wantValue(t, h, "a", "1")
	wantTTL(t, h, "a", 100*time.Millisecond)
	h.advance(30 * time.Millisecond)
	r := h.do(persistReq("a"))
	mustOK(t, r)
	if r.TTLMs == nil || *r.TTLMs != 70 {
		t.Fatalf("persist answered ttl_ms %v, want 70", r.TTLMs)
	}
	wantTTL(t, h, "a", -1)
	if r := h.do(persistReq("a")); !r.OK || r.TTLMs != nil {
		t.Fatalf("persist of a key without a deadline: %+v, want ok without ttl_ms", r)
	}
	h.advance(200 * time.Millisecond)
	wantValue(t, h, "a", "1")

	last := h.node.Metrics().Status.LastIndex
	for _, req := range []*core.Request{expireReq("nope", time.Second), persistReq("nope")} {
		if r := h.do(req); r.OK || r.Error.Code != core.CodeNotFound {
			t.Fatalf("%s of a missing key: %+v, want not_found", req.Op, r)
		}
	}
	if got := h.node.Metrics().Status.LastIndex; got != last {
		t.Fatalf("refused expires logged records: last index %d, was %d", got, last)
	}

	// A shorter deadline replaces a longer one, and the key goes at it;
	// the deadline is a write of the log, there after a crash.
	mustOK(t, h.do(setTTL("b", "2", time.Hour)))
	mustOK(t, h.do(expireReq("b", 50*time.Millisecond)))
	if err := h.crash(); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, h, "b", 50*time.Millisecond)
	wantValue(t, h, "b", "2")
	h.advance(51 * time.Millisecond)
	wantMissing(t, h, "b")
	wantValue(t, h, "a", "1")
}

// An expire or a persist whose write fails is taken back with its batch:
// the key keeps the deadline it had, or none.
func TestFailedExpireIsUndone(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(set("a", "1")))
	mustOK(t, h.do(setTTL("b", "2", time.Hour)))
	h.disk.SetFaults(sim.DiskFaults{WriteErrorProb: 1})
	for _, req := range []*core.Request{expireReq("a", 10*time.Millisecond), persistReq("b")} {
		if r := h.do(req); r.OK || r.Error.Code != core.CodeIOError {
			t.Fatalf("%s on a failing disk: %+v, want io_error", req.Op, r)
		}
	}
	h.disk.SetFaults(sim.DiskFaults{})
	wantTTL(t, h, "a", -1)
	wantTTL(t, h, "b", time.Hour)
	h.advance(20 * time.Millisecond)
	wantValue(t, h, "a", "1")
}

func TestExpireValidation(t *testing.T) {
	for _, line := range []string{
		`{"op":"expire","key":"k"}`,
		`{"op":"expire","key":"k","ttl_ms":0}`,
		`{"op":"expire","ttl_ms":5}`,
		`{"op":"expire","key":"k","ttl_ms":315360000001}`,
		`{"op":"persist","key":"k","ttl_ms":5}`,
		`{"op":"persist"}`,
		`{"op":"expire","key":"k","ttl_ms":5,"if_exists":true}`,
	} {
		req, bad := core.DecodeRequest([]byte(line))
		if bad == nil {
			bad = core.DefaultLimits().Validate(req)
		}
		if bad == nil || bad.Error.Code != core.CodeBadRequest {
			t.Errorf("%s: %+v, want bad_request", line, bad)
		}
	}
	for _, line := range []string{
		`{"op":"expire","key":"k","ttl_ms":5,"client_id":7,"seq":1}`,
		`{"op":"persist","key":"k","client_id":7,"seq":2,"acked":1}`,
	} {
		req, bad := core.DecodeRequest([]byte(line))
		if bad == nil {
			bad = core.DefaultLimits().Validate(req)
		}
		if bad != nil {
			t.Errorf("%s: %+v, want it taken", line, bad)
		}
	}
}

// A scan's items say the time their keys have left, as ttl does, on the
// live store and on a consistent scan's view alike; a key that does not
// expire carries none. (A logical dump, kv scan --all, keeps deadlines by
// it.)
func TestScanSaysTimeLeft(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(setTTL("a", "1", 100*time.Millisecond)))
	mustOK(t, h.do(set("b", "2")))
	mustOK(t, h.do(setTTL("c", "3", time.Hour)))
	h.advance(40 * time.Millisecond)
	want := func(r core.Response, ttls ...int64) {
		t.Helper()
		if !r.OK || len(r.Items) != len(ttls) {
			t.Fatalf("scan: %+v, want %d items", r, len(ttls))
		}
		for i, ms := range ttls {
			got := r.Items[i].TTLMs
			if ms < 0 && got != nil || ms >= 0 && (got == nil || *got != uint64(ms)) {
				t.Fatalf("item %q: ttl_ms %v, want %d (-1: none)", r.Items[i].Key, got, ms)
			}
		}
	}
	want(h.do(&core.Request{Op: core.OpScan}), 60, -1, 3_600_000-40)
	first := h.do(&core.Request{Op: core.OpScan, Limit: 1, Consistent: true})
	want(first, 60)
	h.advance(70 * time.Millisecond) // a's deadline passes: deleted in the store
	wantMissing(t, h, "a")
	// The view is of the first page's instant: a is in it, due.
	rest := h.do(&core.Request{Op: core.OpScan, View: first.View, StartAfter: "a"})
	want(rest, -1, 3_600_000-110)
	line := core.AppendResponse(nil, &rest)
	if !strings.Contains(string(line), `{"key":"c","value":"3","ttl_ms":3599890}`) || strings.Contains(string(line), `"key":"b","value":"2","ttl_ms"`) {
		t.Fatalf("encoded %s", line)
	}
}

// A calendar clock that reads before the Unix epoch gives no deadline: a
// set with ttl_ms and an expire are refused, unavailable, and the node
// serves on. Their deadline was before the epoch, which failed an
// assertion and took the node down at the request.
func TestClockBeforeTheEpochRefusesDeadlines(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(set("k", "v")))
	h.clock.wallShift = -h.clock.Wall() - int64(time.Hour)
	exp := &core.Request{Op: core.OpExpire, Key: "k", TTLMs: 1000}
	for _, req := range []*core.Request{setTTL("k", "w", time.Second), exp} {
		if r := h.do(req); r.OK || r.Error.Code != core.CodeUnavailable || !strings.Contains(r.Error.Message, "calendar clock") {
			t.Fatalf("%s with the clock before 1970: %+v, want unavailable naming the clock", req.Op, r)
		}
	}
	wantValue(t, h, "k", "v")
	wantTTL(t, h, "k", -1)
	mustOK(t, h.do(set("k", "w")))
	h.clock.wallShift = 0
	mustOK(t, h.do(setTTL("k", "x", time.Second)))
	wantTTL(t, h, "k", time.Second)
}

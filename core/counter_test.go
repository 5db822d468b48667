package core_test

import (
	"math"
	"strconv"
	"testing"
	"time"

	"dkv/core"
	"dkv/sim"
)

func TestParseCounter(t *testing.T) {
	for s, want := range map[string]int64{
		"0": 0, "1": 1, "-1": -1, "42": 42,
		"9223372036854775807":  math.MaxInt64,
		"-9223372036854775808": math.MinInt64,
	} {
		if n, ok := core.ParseCounter(s); !ok || n != want {
			t.Errorf("ParseCounter(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
	for _, s := range []string{
		"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1.0", "1e3", "0x10", "abc",
		"9223372036854775808", "-9223372036854775809", "99999999999999999999",
	} {
		if n, ok := core.ParseCounter(s); ok {
			t.Errorf("ParseCounter(%q) = %d, want refused", s, n)
		}
	}
}

func TestIncrement(t *testing.T) {
	for _, c := range []struct {
		value string
		found bool
		delta int64
		n     int64
		code  string
	}{
		{"", false, 1, 1, ""},
		{"", false, -7, -7, ""},
		{"", false, 0, 0, ""},
		{"41", true, 1, 42, ""},
		{"-3", true, 3, 0, ""},
		{"5", true, 0, 5, ""},
		{"9223372036854775806", true, 1, math.MaxInt64, ""},
		{"9223372036854775807", true, 1, 0, core.CodeOverflow},
		{"-9223372036854775807", true, -1, math.MinInt64, ""},
		{"-9223372036854775808", true, -1, 0, core.CodeOverflow},
		{"-1", true, math.MinInt64, 0, core.CodeOverflow},
		{"0", true, math.MinInt64, math.MinInt64, ""},
		{"1", true, math.MaxInt64, 0, core.CodeOverflow},
		{"", true, 1, 0, core.CodeNotInteger}, // an empty value is no counter
		{"x", true, 1, 0, core.CodeNotInteger},
		{"01", true, 1, 0, core.CodeNotInteger},
	} {
		n, code := core.Increment(c.value, c.found, c.delta)
		if n != c.n || code != c.code {
			t.Errorf("Increment(%q, %v, %d) = %d, %q; want %d, %q", c.value, c.found, c.delta, n, code, c.n, c.code)
		}
	}
}

func incrReq(k string, delta int64) *core.Request {
	return &core.Request{Op: core.OpIncr, Key: k, Delta: &delta}
}

func wantIncr(t *testing.T, h *harness, req *core.Request, want int64) {
	t.Helper()
	r := h.do(req)
	if !r.OK || r.Value == nil || *r.Value != strconv.FormatInt(want, 10) {
		t.Fatalf("incr %q by %d: %+v %v, want %d", req.Key, req.IncrDelta(), r.Error, r.Value, want)
	}
}

// incr counts from a missing key's 0, by 1 when no delta is sent, answers
// and stores the new value, keeps the key's deadline, and is a write of
// the log, there after a crash.
func TestIncr(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	wantIncr(t, h, &core.Request{Op: core.OpIncr, Key: "hits"}, 1)
	wantIncr(t, h, incrReq("hits", 41), 42)
	wantIncr(t, h, incrReq("hits", -50), -8)
	wantValue(t, h, "hits", "-8")
	mustOK(t, h.do(setTTL("limited", "10", 100*time.Millisecond)))
	h.advance(30 * time.Millisecond)
	wantIncr(t, h, incrReq("limited", 5), 15)
	wantTTL(t, h, "limited", 70*time.Millisecond)
	if err := h.crash(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, h, "hits", "-8")
	wantValue(t, h, "limited", "15")
	wantTTL(t, h, "limited", 70*time.Millisecond)
	h.advance(71 * time.Millisecond)
	wantMissing(t, h, "limited")
}

// An incr of a value that is not a counter, or past int64, is refused
// with its own code and writes nothing.
func TestIncrRefusals(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	mustOK(t, h.do(set("name", "alice")))
	mustOK(t, h.do(set("big", "9223372036854775807")))
	mustOK(t, h.do(set("padded", "007")))
	last := h.node.Metrics().Status.LastIndex
	for _, c := range []struct {
		req  *core.Request
		code string
	}{
		{incrReq("name", 1), core.CodeNotInteger},
		{incrReq("padded", 1), core.CodeNotInteger},
		{incrReq("big", 1), core.CodeOverflow},
		{incrReq("big", math.MinInt64), ""}, // -1 fits
	} {
		r := h.do(c.req)
		switch {
		case c.code == "" && !r.OK:
			t.Fatalf("incr %q by %d: %+v", c.req.Key, *c.req.Delta, r.Error)
		case c.code != "" && (r.OK || r.Error.Code != c.code):
			t.Fatalf("incr %q by %d: %+v, want %s", c.req.Key, *c.req.Delta, r, c.code)
		}
	}
	if got := h.node.Metrics().Status.LastIndex; got != last+1 {
		t.Fatalf("refused incrs logged records: last index %d, was %d and one incr applied", got, last)
	}
	wantValue(t, h, "name", "alice")
	wantValue(t, h, "padded", "007")
	wantValue(t, h, "big", "-1")
}

// An incr whose write fails is taken back with its batch.
func TestFailedIncrIsUndone(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	wantIncr(t, h, incrReq("n", 5), 5)
	h.disk.SetFaults(sim.DiskFaults{WriteErrorProb: 1})
	if r := h.do(incrReq("n", 1)); r.OK || r.Error.Code != core.CodeIOError {
		t.Fatalf("incr on a failing disk: %+v, want io_error", r)
	}
	h.disk.SetFaults(sim.DiskFaults{})
	wantValue(t, h, "n", "5")
	wantIncr(t, h, incrReq("n", 1), 6)
}

func TestIncrValidation(t *testing.T) {
	for line, code := range map[string]string{
		`{"op":"incr"}`:                                       core.CodeBadRequest,
		`{"op":"incr","key":""}`:                              core.CodeBadRequest,
		`{"op":"incr","key":"k","delta":1.5}`:                 core.CodeBadRequest,
		`{"op":"incr","key":"k","delta":1e3}`:                 core.CodeBadRequest,
		`{"op":"incr","key":"k","delta":"1"}`:                 core.CodeBadRequest,
		`{"op":"incr","key":"k","delta":null}`:                core.CodeBadRequest,
		`{"op":"incr","key":"k","delta":9223372036854775808}`: core.CodeBadRequest,
		`{"op":"incr","key":"k","ttl_ms":5}`:                  core.CodeBadRequest,
		`{"op":"incr","key":"k","if_exists":true}`:            core.CodeBadRequest,
		`{"op":"set","key":"k","value":"1","delta":1}`:        core.CodeBadRequest,
		`{"op":"get","key":"k","delta":1}`:                    core.CodeBadRequest,
		`{"op":"incr","key":"k","value":"5"}`:                 core.CodeBadRequest,
	} {
		req, bad := core.DecodeRequest([]byte(line))
		if bad == nil {
			bad = core.DefaultLimits().Validate(req)
		}
		if bad == nil || bad.Error.Code != code {
			t.Errorf("%s: %+v, want %s", line, bad, code)
		}
	}
	for line, delta := range map[string]int64{
		`{"op":"incr","key":"k"}`:                                            1,
		`{"op":"incr","key":"k","delta":0}`:                                  0,
		`{"op":"incr","key":"k","delta":-9223372036854775808}`:               math.MinInt64,
		`{"op":"incr","key":"k","delta":9223372036854775807}`:                math.MaxInt64,
		`{"op":"incr","key":"k","delta":-3,"client_id":7,"seq":2,"acked":1}`: -3,
	} {
		req, bad := core.DecodeRequest([]byte(line))
		if bad == nil {
			bad = core.DefaultLimits().Validate(req)
		}
		if bad != nil || req.IncrDelta() != delta {
			t.Errorf("%s: %+v, delta %d; want it taken with delta %d", line, bad, req.IncrDelta(), delta)
		}
	}
	small := core.DefaultLimits()
	small.ValueBytesMax = 8
	if bad := small.Validate(incrReq("k", 1)); bad == nil || bad.Error.Code != core.CodeTooLarge {
		t.Errorf("incr under an 8-byte value limit: %+v, want too_large", bad)
	}
}

// A cluster's incr command carries its key and delta through the log.
func TestIncrCommandRoundTrip(t *testing.T) {
	for _, delta := range []int64{1, -1, 0, math.MaxInt64, math.MinInt64} {
		req := incrReq("counter:7", delta)
		req.ClientID, req.Seq, req.Acked = 9, 4, 3
		c := core.CommandFromRequest(req)
		b, err := core.AppendCommand(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := core.DecodeCommand(b)
		if err != nil {
			t.Fatalf("delta %d: %v", delta, err)
		}
		if got.Op != core.OpIncr || got.Delta != delta || len(got.Items) != 1 || got.Items[0].Key != "counter:7" || got.ClientID != 9 || got.Seq != 4 || got.Acked != 3 {
			t.Fatalf("delta %d: decoded %+v", delta, got)
		}
		if _, err := core.DecodeCommand(b[:len(b)-len("counter:7")]); err == nil {
			t.Fatalf("delta %d: an incr without its key decoded", delta)
		}
	}
}

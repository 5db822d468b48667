package core_test

import (
	"strings"
	"testing"

	"dkv/core"
)

func condSet(k, v string, cond func(*core.Request)) *core.Request {
	r := set(k, v)
	cond(r)
	return r
}

func ifAbsent(r *core.Request)             { r.IfAbsent = true }
func ifExists(r *core.Request)             { r.IfExists = true }
func ifValue(v string) func(*core.Request) { return func(r *core.Request) { r.IfValue = &v } }

func wantConditionFailed(t *testing.T, r core.Response, current *string) {
	t.Helper()
	if r.OK || r.Error == nil || r.Error.Code != core.CodeConditionFailed {
		t.Fatalf("got %+v, want condition_failed", r.Error)
	}
	switch {
	case current == nil && r.Value != nil:
		t.Fatalf("condition_failed carries value %q for a key that does not exist", *r.Value)
	case current != nil && (r.Value == nil || *r.Value != *current):
		t.Fatalf("condition_failed carries value %v, want %q", r.Value, *current)
	}
}

func ptr(s string) *string { return &s }

func TestConditionalWrites(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	wantConditionFailed(t, h.do(condSet("k", "v", ifExists)), nil)
	wantConditionFailed(t, h.do(condSet("k", "v", ifValue(""))), nil)
	wantConditionFailed(t, h.do(&core.Request{Op: core.OpDelete, Key: "k", IfValue: ptr("v")}), nil)
	wantMissing(t, h, "k")

	mustOK(t, h.do(condSet("k", "v1", ifAbsent)))
	wantConditionFailed(t, h.do(condSet("k", "v2", ifAbsent)), ptr("v1"))
	mustOK(t, h.do(condSet("k", "v2", ifExists)))
	wantConditionFailed(t, h.do(condSet("k", "v3", ifValue("v1"))), ptr("v2"))
	mustOK(t, h.do(condSet("k", "v3", ifValue("v2"))))
	wantConditionFailed(t, h.do(&core.Request{Op: core.OpDelete, Key: "k", IfValue: ptr("v2")}), ptr("v3"))
	wantValue(t, h, "k", "v3")
	mustOK(t, h.do(&core.Request{Op: core.OpDelete, Key: "k", IfValue: ptr("v3")}))
	wantMissing(t, h, "k")

	// What applied survives a restart; what was refused left nothing.
	mustOK(t, h.do(condSet("a", "1", ifAbsent)))
	wantConditionFailed(t, h.do(condSet("b", "1", ifExists)), nil)
	if err := h.crash(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, h, "a", "1")
	wantMissing(t, h, "b")
	wantMissing(t, h, "k")
}

// Conditions are checked in the order of the log, the open batch's writes
// included: of two if_absent sets of one key in one turn, the first
// applies and the second sees its value.
func TestConditionsSeeTheOpenBatch(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	resps, err := h.turn(
		condSet("k", "first", ifAbsent),
		condSet("k", "second", ifAbsent),
		condSet("k", "third", ifValue("first")),
		condSet("k", "fourth", ifValue("first")),
	)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, resps[0])
	wantConditionFailed(t, resps[1], ptr("first"))
	mustOK(t, resps[2])
	wantConditionFailed(t, resps[3], ptr("third"))
	wantValue(t, h, "k", "third")
}

// A refusal reports a value that may be the open batch's, so it waits for
// the batch's sync like a read: answered earlier, a crash could take back
// the value it reported.
func TestConditionFailureWaitsForItsBatch(t *testing.T) {
	for _, mut := range []core.Mutation{core.MutNone, core.MutCondFailureBeforeDurable} {
		t.Run(mut.String(), func(t *testing.T) {
			cfg := core.DefaultSingleConfig()
			cfg.Mutation = mut
			h := newHarness(t, cfg)
			h.async = true
			if err := h.crash(); err != nil {
				t.Fatal(err)
			}
			var got []core.Response
			collect := func(r core.Response) { got = append(got, r) }
			h.node.HandleRequest(set("k", "unsynced"), collect)
			h.node.HandleRequest(condSet("k", "v", ifAbsent), collect)
			if err := h.node.Flush(); err != nil {
				t.Fatal(err)
			}
			early := len(got)
			if err := h.settle(); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("%d replies after the sync, want 2", len(got))
			}
			refusal := got[1]
			if got[0].Error != nil {
				refusal = got[0] // the planted bug answered it first
			}
			wantConditionFailed(t, refusal, ptr("unsynced"))
			if mut == core.MutNone && early != 0 {
				t.Fatalf("%d replies before the batch's sync", early)
			}
			if mut != core.MutNone && early != 1 {
				t.Fatalf("the planted bug should answer the refusal before the sync; %d replies were early", early)
			}
		})
	}
}

func TestConditionValidation(t *testing.T) {
	h := newHarness(t, core.DefaultSingleConfig())
	big := strings.Repeat("x", core.DefaultLimits().ValueBytesMax+1)
	cases := []struct {
		name string
		req  *core.Request
		code string
		msg  string
	}{
		{"two conditions", &core.Request{Op: core.OpSet, Key: "k", Value: ptr("v"), IfAbsent: true, IfValue: ptr("a")}, core.CodeBadRequest, "at most one"},
		{"delete if_absent", &core.Request{Op: core.OpDelete, Key: "k", IfAbsent: true}, core.CodeBadRequest, "if_value only"},
		{"bulk_set if_value", &core.Request{Op: core.OpBulkSet, Items: []core.KV{{Key: "a", Value: "b"}}, IfValue: ptr("b")}, core.CodeBadRequest, "for set and delete"},
		{"get if_exists", &core.Request{Op: core.OpGet, Key: "k", IfExists: true}, core.CodeBadRequest, "for set and delete"},
		{"if_value too large", &core.Request{Op: core.OpSet, Key: "k", Value: ptr("v"), IfValue: &big}, core.CodeTooLarge, "if_value is"},
	}
	for _, c := range cases {
		r := h.do(c.req)
		if r.OK || r.Error == nil || r.Error.Code != c.code || !strings.Contains(r.Error.Message, c.msg) {
			t.Errorf("%s: got %+v, want %s containing %q", c.name, r.Error, c.code, c.msg)
		}
	}
	wantMissing(t, h, "k")
	wantMissing(t, h, "a")
}

package indexes

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/vecidx"
)

// A tiny model: three directions, so similarities are known by hand.
func testModel(t *testing.T) *vecidx.Model {
	t.Helper()
	m, err := vecidx.ReadText(strings.NewReader("cat 1 0 0\ndog 0.8 0.6 0\ncar 0 0 1\nbus 0 0.6 0.8\n"), vecidx.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func search(t *testing.T, s *Set, req core.Request) []core.Hit {
	t.Helper()
	resp := s.Search(&req)
	if !resp.OK {
		t.Fatalf("%s %q: %+v", req.Op, req.Query, resp.Error)
	}
	return resp.Hits
}

func keys(hits []core.Hit) string {
	var ks []string
	for _, h := range hits {
		ks = append(ks, h.Key)
	}
	return strings.Join(ks, ",")
}

func TestPutRemoveReset(t *testing.T) {
	s := New(DefaultConfig(testModel(t), "test"))
	s.Put("a", "the cat sat")
	s.Put("b", "a dog and a cat")
	s.Put("c", "zzz qqq") // no word of the model: no vector
	if got := keys(search(t, s, core.Request{Op: core.OpSearch, Query: "sat"})); got != "a" {
		t.Errorf("search sat: %s", got)
	}
	if got := keys(search(t, s, core.Request{Op: core.OpSearchSimilar, Query: "cat", TopK: 5})); got != "a,b" {
		t.Errorf("similar cat: %s, want a,b (c has no vector)", got)
	}
	s.Put("a", "a bus") // overwrite: the old words and vector go
	if got := keys(search(t, s, core.Request{Op: core.OpSearch, Query: "sat"})); got != "" {
		t.Errorf("search sat after overwrite: %s", got)
	}
	if got := keys(search(t, s, core.Request{Op: core.OpSearchSimilar, Query: "car", TopK: 1})); got != "a" {
		t.Errorf("similar car: %s, want a (bus is nearest)", got)
	}
	s.Put("b", "qqq") // its vector must go too
	s.Remove("a")
	if got := keys(search(t, s, core.Request{Op: core.OpSearchSimilar, Query: "car", TopK: 5})); got != "" {
		t.Errorf("similar car after remove: %s", got)
	}
	if got := keys(search(t, s, core.Request{Op: core.OpSearch, Query: "qqq"})); got != "b,c" && got != "c,b" {
		t.Errorf("search qqq: %s", got)
	}
	s.Reset()
	if st := s.Status(); st.Docs != 0 || st.Vectors != 0 || st.Words != 4 || st.Dim != 3 || st.Model != "test" {
		t.Errorf("status after reset: %+v", st)
	}
}

// Put with a write's prepared work indexes exactly what Put without it
// does, and prepared work of another key or value is not used.
func TestPreparedEqualsInline(t *testing.T) {
	m := testModel(t)
	inline, prep := New(DefaultConfig(m, "t")), New(DefaultConfig(m, "t"))
	value := func(i int) string { return []string{"cat dog", "the car", "bus bus cat", "nothing known", ""}[i%5] }
	for i := range 40 {
		req := &core.Request{Op: core.OpBulkSet}
		for j := range 3 {
			req.Items = append(req.Items, core.KV{Key: fmt.Sprintf("k%d", (i+j)%7), Value: value(i + j)})
		}
		prep.Prepare(req)
		if req.Prepared == nil {
			t.Fatal("Prepare left nothing")
		}
		if i%3 == 0 { // a write whose prepared work does not match must not use it
			req.Items[0].Value += " car"
		}
		prep.Expect(req.Prepared)
		for _, kv := range req.Items {
			prep.Put(kv.Key, kv.Value)
			inline.Put(kv.Key, kv.Value)
		}
		prep.Expect(nil)
	}
	for _, q := range []core.Request{
		{Op: core.OpSearch, Query: "cat"}, {Op: core.OpSearch, Query: "car bus", Mode: core.SearchModeAny},
		{Op: core.OpSearchSimilar, Query: "dog", TopK: 7}, {Op: core.OpSearchSimilar, Query: "car", TopK: 7},
	} {
		a, b := prep.Search(&q), inline.Search(&q)
		if fmt.Sprint(a.Hits) != fmt.Sprint(b.Hits) {
			t.Errorf("%s %q: prepared %v, inline %v", q.Op, q.Query, a.Hits, b.Hits)
		}
	}
	if a, b := prep.Status(), inline.Status(); a != b {
		t.Errorf("status: prepared %+v, inline %+v", a, b)
	}
	// Only writes are prepared.
	get := &core.Request{Op: core.OpGet, Key: "k"}
	prep.Prepare(get)
	if get.Prepared != nil {
		t.Errorf("a get was prepared")
	}
}

func TestSearchErrors(t *testing.T) {
	s := New(DefaultConfig(testModel(t), "t"))
	s.Put("a", "cat")
	for _, tc := range []struct {
		req  core.Request
		code string
	}{
		{core.Request{Op: core.OpSearchSimilar, Query: "zebra"}, core.CodeBadRequest},
		{core.Request{Op: core.OpSearch, Query: `"open`}, core.CodeBadRequest},
		{core.Request{Op: core.OpSearch, Query: "   "}, core.CodeBadRequest},
		{core.Request{Op: core.OpGet, Key: "a"}, core.CodeBadRequest},
	} {
		resp := s.Search(&tc.req)
		if resp.OK || resp.Error.Code != tc.code {
			t.Errorf("%s %q: %+v %+v, want %s", tc.req.Op, tc.req.Query, resp, resp.Error, tc.code)
		}
	}
	// No hits is an empty list, not an absent one.
	if resp := s.Search(&core.Request{Op: core.OpSearch, Query: "dog"}); !resp.OK || resp.Hits == nil || len(resp.Hits) != 0 {
		t.Errorf("search with no match: %+v", resp)
	}
}

// New codes a plain model itself and takes a coded one as it is, so that
// a caller making many Sets over one model codes it once.
func TestNewCodesTheModelOnce(t *testing.T) {
	m := testModel(t)
	if m.HasWordCodes() {
		t.Fatal("a loaded model has word codes")
	}
	if s := New(DefaultConfig(m, "test")); s.model == m || !s.model.HasWordCodes() {
		t.Fatalf("New kept a model without codes")
	}
	coded := CodedModel(m)
	if s := New(DefaultConfig(coded, "test")); s.model != coded {
		t.Fatalf("New coded an already coded model again")
	}
}

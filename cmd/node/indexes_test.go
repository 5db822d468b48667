package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
)

// The indexes of a real server: search and search_similar answer from what
// was written, follow deletes, overwrites and bulk sets, are rebuilt after
// a SIGKILL to give the same answers, and refuse bad queries clearly.
func TestIndexesAcrossSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := start(t, dir, "--enable-indexes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{
		"doc1": "hello world foo",
		"doc2": "hello bar",
		"doc3": "The ocean waves crashed on the sandy beach",
		"doc4": "A violin and a piano played quiet music",
		"doc5": "Running shoes for the marathon runner",
		"gone": "hello from a value that will be deleted",
		"over": "hello from a value that will be overwritten",
	}
	for _, k := range sortedKeys(docs) {
		if err := c.Set(ctx, k, docs[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.BulkSet(ctx, []client.KV{{Key: "bulk1", Value: "guitar music all night"}, {Key: "bulk2", Value: "the storm over the ocean"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "over", "nothing of the sort now"); err != nil {
		t.Fatal(err)
	}

	type query struct {
		similar bool
		text    string
		opts    []client.SearchOption
	}
	queries := []query{
		{text: "hello"},
		{text: `"hello world"`},
		{text: "world bar", opts: []client.SearchOption{client.AnyWord()}},
		{text: "run"}, // stems: running, runner
		{text: "music"},
		{text: "deleted"},
		{similar: true, text: "sea"},
		{similar: true, text: "guitar"},
	}
	ask := func(c *client.KVClient) [][]client.Hit {
		var out [][]client.Hit
		for _, q := range queries {
			var hits []client.Hit
			var err error
			if q.similar {
				hits, err = c.SearchSimilar(ctx, q.text, 3)
			} else {
				hits, err = c.Search(ctx, q.text, q.opts...)
			}
			if err != nil {
				t.Fatalf("%q: %v", q.text, err)
			}
			out = append(out, hits)
		}
		return out
	}
	before := ask(c)
	keys := func(hits []client.Hit) []string {
		var ks []string
		for _, h := range hits {
			ks = append(ks, h.Key)
		}
		return ks
	}
	for i, want := range [][]string{
		{"doc2", "doc1"}, // the shorter value ranks first
		{"doc1"},
		{"doc2", "doc1"},
		{"doc5"},
		{"bulk1", "doc4"},
		{}, // "gone" was deleted
	} {
		if got := keys(before[i]); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%q: hits %v, want %v", queries[i].text, got, want)
		}
	}
	if got := keys(before[6]); len(got) == 0 || (got[0] != "doc3" && got[0] != "bulk2") {
		t.Errorf("similar to sea: %v, want an ocean value first", before[6])
	}
	if got := keys(before[7]); len(got) == 0 || got[0] != "bulk1" {
		t.Errorf("similar to guitar: %v, want bulk1 first", before[7])
	}
	c.Close()

	s.signal(syscall.SIGKILL)
	s.exitCode()
	s = start(t, dir, "--enable-indexes")
	if !strings.Contains(s.log(), "recovered 8 keys") {
		t.Errorf("restart log does not say 8 keys:\n%s", s.log())
	}
	c, err = client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	after := ask(c)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("answers changed across the restart:\nbefore %v\nafter  %v", before, after)
	}
	// Eight vectors fit one growing segment, which the node links in its
	// idle time after the restart.
	st, err := c.Status(ctx)
	for deadline := time.Now().Add(10 * time.Second); err == nil && st.Indexes != nil && st.Indexes.WorkLeft > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st, err = c.Status(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.Indexes == nil || st.Indexes.Docs != 8 || st.Indexes.Vectors != 8 || st.Indexes.Words == 0 ||
		st.Indexes.Segments != 1 || st.Indexes.WorkLeft != 0 || st.Indexes.Pending != 0 {
		t.Errorf("status indexes: %+v", st.Indexes)
	}

	// Bad queries: each a clear answer, and the server stays up.
	for _, tc := range []struct{ line, code, msg string }{
		{`{"op":"search","query":""}`, core.CodeBadRequest, `non-empty string field "query"`},
		{`{"op":"search_similar","query":"foo","top_k":0}`, core.CodeBadRequest, `"top_k" must be at least 1`},
		{`{"op":"search_similar","query":"foo","top_k":-3}`, core.CodeBadRequest, `non-negative integer`},
		{`{"op":"search_similar","query":"foo","top_k":5000}`, core.CodeTooLarge, `top_k is 5000`},
		{`{"op":"search","query":"` + strings.Repeat("word ", 1000) + `"}`, core.CodeTooLarge, `query is 5000 bytes`},
		{`{"op":"search_similar","query":"qqxzv zzkqw"}`, core.CodeBadRequest, `no word of the query is in the embedding model`},
		{`{"op":"search","query":"the and of"}`, "", ""}, // only stop words: no hits
		{`{"op":"search","query":"qqxzv"}`, "", ""},      // unknown word: no hits
		{`{"op":"search","query":"\"unclosed"}`, core.CodeBadRequest, `double quote at byte 0 is not closed`},
		{`{"op":"search","query":"!!! ..."}`, core.CodeBadRequest, `no words`},
		{`{"op":"search","query":"` + strings.Repeat("word ", 33) + `"}`, core.CodeTooLarge, `more than 32 words`},
		{`{"op":"search","query":"x","mode":"most"}`, core.CodeBadRequest, `mode must be "all" or "any"`},
		{`{"op":"set","key":"bin","value":"\u0000\u0001\u0002\u00ff\u0003"}`, "", ""}, // not text: stored, not indexed
		{`{"op":"ping"}`, "", ""},
	} {
		r := roundTrip(t, s.addr, tc.line)[0]
		if code(r) != tc.code || (tc.code != "" && !strings.Contains(r.Error.Message, tc.msg)) {
			t.Errorf("%.70s: got %+v %+v, want %q containing %q", tc.line, r, r.Error, tc.code, tc.msg)
		}
		if tc.code == "" && strings.Contains(tc.line, `"search"`) && len(r.Hits) != 0 {
			t.Errorf("%.70s: hits %v, want none", tc.line, r.Hits)
		}
	}
}

// Without --enable-indexes, the search ops name the flag.
func TestSearchWithoutIndexesNamesTheFlag(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"))
	for _, line := range []string{`{"op":"search","query":"hello"}`, `{"op":"search_similar","query":"hello"}`} {
		r := roundTrip(t, s.addr, line)[0]
		if code(r) != core.CodeIndexesDisabled || !strings.Contains(r.Error.Message, "--enable-indexes") {
			t.Errorf("%s: %+v %+v", line, r, r.Error)
		}
	}
	c, err := client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Search(context.Background(), "hello"); !errors.Is(err, client.ErrIndexesDisabled) {
		t.Errorf("client Search: %v, want ErrIndexesDisabled", err)
	}
}

// A user's own vectors load from a GloVe text file.
func TestIndexesWithOwnEmbeddings(t *testing.T) {
	vectors := filepath.Join(t.TempDir(), "vectors.txt")
	if err := os.WriteFile(vectors, []byte("cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, filepath.Join(t.TempDir(), "data"), "--enable-indexes", "--embeddings", vectors)
	resps := roundTrip(t, s.addr,
		`{"op":"set","key":"a","value":"dog"}`,
		`{"op":"set","key":"b","value":"car"}`,
		`{"op":"search_similar","query":"cat","top_k":2}`)
	hits := resps[2].Hits
	if !resps[2].OK || len(hits) != 2 || hits[0].Key != "a" || hits[1].Key != "b" || !(hits[0].Score > 0.9) {
		t.Errorf("similar to cat: %+v %+v", resps[2], resps[2].Error)
	}
	if !strings.Contains(s.log(), "word vectors from "+vectors+": 3 words, 3 dimensions") {
		t.Errorf("log does not name the vectors:\n%s", s.log())
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// A write's values are analysed ahead of the node (Prepare, on the
// goroutine that read the request, with --event-loops 0 or 2 and more, or
// TLS) only if the node will take them: a value over --max-value-bytes
// was analysed in full and then refused, so that any client could make
// the server spend 0.8 s and 190 MB on a 16 MiB line it answers
// too_large (eight at once: 9 s and a 1.2 GB peak, against 1.3 s and 280
// MB with one event loop, which leaves the analysis to Put).
func TestIndexesPrepareOnlyValuesTheNodeTakes(t *testing.T) {
	vectors := filepath.Join(t.TempDir(), "vectors.txt")
	if err := os.WriteFile(vectors, []byte("ocean 1 0 0\nsea 0.9 0.1 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	limits := core.DefaultLimits()
	limits.ValueBytesMax = 16
	idx, err := newIndexes(vectors, limits, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	fits, over := "ocean and sea", strings.Repeat("ocean ", 3)
	for _, tc := range []struct {
		name string
		req  core.Request
		want bool
	}{
		{"set", core.Request{Op: core.OpSet, Key: "k", Value: &fits}, true},
		{"set over the limit", core.Request{Op: core.OpSet, Key: "k", Value: &over}, false},
		{"bulk_set", core.Request{Op: core.OpBulkSet, Items: []core.KV{{Key: "a", Value: fits}, {Key: "b", Value: fits}}}, true},
		{"bulk_set with a value over the limit", core.Request{Op: core.OpBulkSet, Items: []core.KV{{Key: "a", Value: fits}, {Key: "b", Value: over}}}, false},
	} {
		req := tc.req
		idx.Prepare(&req)
		if got := req.Prepared != nil; got != tc.want {
			t.Errorf("%s: prepared %v, want %v", tc.name, got, tc.want)
		}
	}
}

// prepareStub is Indexes whose Prepare alone is called.
type prepareStub struct{ core.Indexes }

func (prepareStub) Prepare(*core.Request) {}

// The connections analyse values for a single node's and a mesh node's
// indexes, never for a cluster node's: it indexes what it applies from
// its log, and every write was analysed twice, once for nothing.
func TestConnectionsPrepareNoClusterWrites(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--secondary-repl-ports", "9101,9102", "--other-kv-ports", "9001,9002"}, false},
		{[]string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101,9102"}, true},
	} {
		o, err := parseFlags(c.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		o.single.Indexes = prepareStub{}
		if got := prepareFor(o) != nil; got != c.want {
			t.Errorf("%s mode: the connections prepare: %v, want %v", o.mode, got, c.want)
		}
	}
}

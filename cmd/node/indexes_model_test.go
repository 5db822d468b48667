package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"dkv/core"
	"dkv/internal/indexes"
	"dkv/vecidx"

	"pgregory.net/rapid"
)

// The indexes a server runs (the index worker over both real indexes),
// driven as a node drives them — sets with and without prepared work,
// bulk_set (a key twice in one write included), delete, bulk_delete, a
// restart's rebuild, the pacer's Work — against a brute-force model that
// shares no code with the full-text index: a map of the values, searched
// by splitting them on spaces. The similarity answers are compared with
// vecidx's exact scan of the model's values (a fresh index's Exact), so
// any value left behind by an overwrite or a delete, or missing after a
// rebuild, shows as a key set that differs.

// similarWords are words of the built-in model that the full-text index
// keeps as they are (no stop word, a stem of its own), so that the model
// can match them by their text; modelWords adds words outside the
// embedding model's vocabulary, accented, and Han characters (each a word
// of its own to the full-text index).
var (
	similarWords = []string{"river", "bank", "money", "water", "boat", "piano", "guitar", "ocean", "forest", "coffee"}
	modelWords   = append(slices.Clip(similarWords), "zxqv", "café", "über", "東京", "the")
)

// indexModel is the store as the indexes should see it.
type indexModel map[string]string

// words is what the model makes of a value: its words, or none for a
// value that is not text (a control byte).
func modelValueWords(v string) []string {
	if strings.ContainsAny(v, "\x00\x01") {
		return nil
	}
	return splitWords(strings.ToLower(strings.NewReplacer(",", " ", ".", " ", "🎸", " ").Replace(v)))
}

// splitWords splits text on spaces, and each Han character off as a word.
func splitWords(text string) []string {
	var out []string
	for _, f := range strings.Fields(text) {
		if f == "東京" {
			out = append(out, "東", "京")
			continue
		}
		out = append(out, f)
	}
	return out
}

// textHits is the set of keys whose value holds every query word (All) or
// one (Any), or, for a phrase, the words one after another; "the", a stop
// word, is no word to match, but in a phrase it holds a place for any
// word.
func (m indexModel) textHits(words []string, phrase, any bool) []string {
	var out []string
	if !phrase {
		words = slices.DeleteFunc(slices.Clone(words), func(w string) bool { return w == "the" })
	} else {
		// A phrase's leading and trailing stop words hold no place.
		for len(words) > 0 && words[0] == "the" {
			words = words[1:]
		}
		for len(words) > 0 && words[len(words)-1] == "the" {
			words = words[:len(words)-1]
		}
	}
	if len(words) == 0 {
		return nil
	}
	for k, v := range m {
		ws := modelValueWords(v)
		match := false
		switch {
		case phrase:
			for i := 0; i+len(words) <= len(ws) && !match; i++ {
				match = true
				for j, w := range words {
					match = match && (w == "the" || ws[i+j] == w)
				}
			}
		case any:
			for _, w := range words {
				match = match || slices.Contains(ws, w)
			}
		default:
			match = true
			for _, w := range words {
				match = match && slices.Contains(ws, w)
			}
		}
		if match {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// similar is vecidx's exact scan of the model's values' embeddings.
func (m indexModel) similar(t *rapid.T, model *vecidx.Model, query string, k int) []core.Hit {
	x := vecidx.NewIndex(model.Dim(), vecidx.DefaultIndexOptions())
	for key, v := range m {
		if e, err := model.Embed(v); err == nil {
			if err := x.Put(key, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	q, err := model.Embed(query)
	if err != nil {
		t.Fatal(err)
	}
	var out []core.Hit
	for _, h := range x.Exact(q, k) {
		out = append(out, core.Hit{Key: h.Key, Score: float64(h.Score)})
	}
	return out
}

func hitKeysOf(hits []core.Hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.Key)
	}
	return out
}

func TestIndexesMatchBruteForce(t *testing.T) {
	m, err := vecidx.Default()
	if err != nil {
		t.Fatal(err)
	}
	model := indexes.CodedModel(m)
	rapid.Check(t, func(t *rapid.T) {
		cfg := indexes.DefaultConfig(model, "built-in")
		// Few vectors: the graphs, searched exhaustively (every list holds
		// every node, every result set all of them), must answer as the
		// exact scan; or the exact scan itself below ExactBelow.
		if rapid.Bool().Draw(t, "graphs") {
			cfg.Vec.ExactBelow = 0
			cfg.Vec.SegmentVectors = rapid.IntRange(1, 8).Draw(t, "segment")
			cfg.Vec.MergeVectorsMax = 4 * cfg.Vec.SegmentVectors
			cfg.Vec.M, cfg.Vec.EfConstruction, cfg.Vec.SegmentEfConstruction, cfg.Vec.EfSearch = vecidx.MMax, vecidx.EfMax, vecidx.EfMax, vecidx.EfMax
			cfg.Vec.PendingMax = rapid.IntRange(1, 8).Draw(t, "pending")
		}
		w := newIndexWorker(indexes.New(cfg))
		w.analysers = 1 // bursts are analysed beside the worker on any machine
		defer w.close()
		st := indexModel{}

		key := func(t *rapid.T) string { return fmt.Sprintf("k%d", rapid.IntRange(0, 11).Draw(t, "key")) }
		value := func(t *rapid.T) string {
			n := rapid.IntRange(0, 8).Draw(t, "words")
			var b strings.Builder
			for i := range n {
				if i > 0 {
					b.WriteString(rapid.SampledFrom([]string{" ", " ", ", ", ". ", " 🎸 "}).Draw(t, "sep"))
				}
				word := rapid.SampledFrom(modelWords).Draw(t, "word")
				if rapid.IntRange(0, 4).Draw(t, "capital") == 0 {
					word = strings.ToUpper(word) // Über, CAFÉ
				}
				b.WriteString(word)
			}
			if rapid.IntRange(0, 15).Draw(t, "binary") == 0 {
				b.WriteString("\x00") // not text: neither index holds it
			}
			return b.String()
		}
		put := func(k, v string) { w.Put(k, v); st[k] = v }
		write := func(req *core.Request) {
			// As a node applies a write: its prepared work expected
			// (when the host prepared it), then the store's changes.
			if rapid.Bool().Draw(t, "prepared") {
				w.Prepare(req)
				w.Expect(req.Prepared)
				defer w.Expect(nil)
			}
			switch req.Op {
			case core.OpSet:
				put(req.Key, *req.Value)
			case core.OpBulkSet:
				for _, kv := range req.Items {
					put(kv.Key, kv.Value)
				}
			}
		}
		remove := func(k string) {
			if _, ok := st[k]; ok { // the store tells only of keys it held
				w.Remove(k)
				delete(st, k)
			}
		}

		t.Repeat(map[string]func(*rapid.T){
			"set": func(t *rapid.T) {
				v := value(t)
				write(&core.Request{Op: core.OpSet, Key: key(t), Value: &v})
			},
			"bulk_set": func(t *rapid.T) {
				req := &core.Request{Op: core.OpBulkSet}
				for range rapid.IntRange(1, 5).Draw(t, "items") {
					req.Items = append(req.Items, core.KV{Key: key(t), Value: value(t)})
				}
				write(req)
			},
			"burst": func(t *rapid.T) {
				// Writes the worker takes in one batch (prepareBatch). All
				// drawn first: a draw that fails while the worker is held
				// would leave it held, and close waiting for it.
				var kvs []core.KV
				for range rapid.IntRange(2, 10).Draw(t, "burst") {
					kvs = append(kvs, core.KV{Key: key(t), Value: value(t)})
				}
				release := hold(w)
				for _, kv := range kvs {
					put(kv.Key, kv.Value)
				}
				release()
			},
			"delete": func(t *rapid.T) { remove(key(t)) },
			"bulk_delete": func(t *rapid.T) {
				for range rapid.IntRange(1, 5).Draw(t, "keys") {
					remove(key(t))
				}
			},
			"restart": func(t *rapid.T) {
				// A rebuild from the store's values (core.AttachedIndexes).
				w.Reset()
				keys := make([]string, 0, len(st))
				for k := range st {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					w.Put(k, st[k])
				}
				w.Loaded()
			},
			"work": func(t *rapid.T) { w.Work(rapid.IntRange(1, 8).Draw(t, "budget")) },
			"search": func(t *rapid.T) {
				n := rapid.IntRange(1, 3).Draw(t, "query words")
				words := make([]string, n)
				for i := range words {
					words[i] = rapid.SampledFrom(modelWords).Draw(t, "query word")
				}
				mode := rapid.SampledFrom([]string{"all", "any", "phrase"}).Draw(t, "mode")
				req := core.Request{Op: core.OpSearch, Query: strings.Join(words, " "), Limit: 1000}
				switch mode {
				case "any":
					req.Mode = core.SearchModeAny
				case "phrase":
					req.Query = `"` + req.Query + `"`
				}
				resp := w.Search(&req)
				if !resp.OK {
					t.Fatalf("search %q: %+v", req.Query, resp.Error)
				}
				got := hitKeysOf(resp.Hits)
				for i := 1; i < len(resp.Hits); i++ {
					a, b := resp.Hits[i-1], resp.Hits[i]
					if a.Score < b.Score || a.Score == b.Score && a.Key >= b.Key {
						t.Fatalf("search %q: hits out of order: %+v", req.Query, resp.Hits)
					}
				}
				sort.Strings(got)
				want := st.textHits(splitWords(strings.Join(words, " ")), mode == "phrase", mode == "any")
				if want == nil {
					want = []string{}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("search %q (%s): %v, the store's values hold it in %v\nstore %q", req.Query, mode, got, want, st)
				}
			},
			"similar": func(t *rapid.T) {
				q := rapid.SampledFrom(similarWords).Draw(t, "similar word")
				k := rapid.IntRange(1, 12).Draw(t, "top_k")
				req := core.Request{Op: core.OpSearchSimilar, Query: q, TopK: uint64(k)}
				resp := w.Search(&req)
				if !resp.OK {
					t.Fatalf("similar %q: %+v", q, resp.Error)
				}
				if want := st.similar(t, m, q, k); !slices.Equal(resp.Hits, want) {
					t.Fatalf("similar %q top %d: %v, exact scan of the store's values %v\nstore %q", q, k, resp.Hits, want, st)
				}
			},
		})
	})
}

package vecidx

import (
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"
)

// bruteTopK is the model's answer: every vector scored against q, sorted by
// score descending and key ascending, cut at k. Vectors and query are
// normalised with the index's own unitCopy, so the scores are comparable
// bit for bit.
func bruteTopK(t rapid.TB, model map[string][]float32, q []float32, k int) []Hit {
	t.Helper()
	u, err := unitCopy(q, len(q))
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	keys := make([]string, 0, len(model))
	for key := range model {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	hits := make([]Hit, 0, len(keys))
	for _, key := range keys {
		hits = append(hits, Hit{Key: key, Score: dot(u, model[key])})
	}
	sort.SliceStable(hits, func(i, j int) bool { return better(hits[i], hits[j]) })
	return hits[:min(k, len(hits))]
}

// checkHits asserts what every search result must satisfy, exact or not:
// each key present in the model, scored with its current vector, no key
// twice, best first with ties by key.
func checkHits(t rapid.TB, model map[string][]float32, q []float32, k int, got []Hit) {
	t.Helper()
	u, _ := unitCopy(q, len(q))
	if len(got) > k || len(got) > len(model) {
		t.Fatalf("%d hits for k=%d over %d keys", len(got), k, len(model))
	}
	seen := map[string]bool{}
	for i, h := range got {
		v, ok := model[h.Key]
		if !ok {
			t.Fatalf("hit %q is not in the index", h.Key)
		}
		if want := dot(u, v); h.Score != want {
			t.Fatalf("hit %q scored %v, its current vector scores %v", h.Key, h.Score, want)
		}
		if seen[h.Key] {
			t.Fatalf("hit %q twice in %v", h.Key, got)
		}
		seen[h.Key] = true
		if i > 0 && !better(got[i-1], h) {
			t.Fatalf("hits out of order: %v", got)
		}
	}
}

func mustUnit(t rapid.TB, v []float32) []float32 {
	t.Helper()
	u, err := unitCopy(v, len(v))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var _ = slices.Equal[[]int]
var _ testing.TB

package vecidx

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// TestExactTiny checks Exact on small hand-made sets, including ties
// (broken by key), k beyond the size, and an empty index.
func TestExactTiny(t *testing.T) {
	type kv struct {
		key string
		v   []float32
	}
	tests := []struct {
		name  string
		items []kv
		q     []float32
		k     int
		want  []string
	}{
		{"empty", nil, []float32{1, 0}, 3, []string{}},
		{"one", []kv{{"a", []float32{0, 1}}}, []float32{1, 0}, 3, []string{"a"}},
		{"order", []kv{{"far", []float32{-1, 0}}, {"near", []float32{1, 0.1}}, {"mid", []float32{0, 1}}},
			[]float32{1, 0}, 3, []string{"near", "mid", "far"}},
		{"cut at k", []kv{{"far", []float32{-1, 0}}, {"near", []float32{1, 0.1}}, {"mid", []float32{0, 1}}},
			[]float32{1, 0}, 2, []string{"near", "mid"}},
		{"ties by key", []kv{{"c", []float32{2, 0}}, {"a", []float32{1, 0}}, {"b", []float32{5, 0}}},
			[]float32{1, 0}, 2, []string{"a", "b"}},
		{"length does not matter", []kv{{"long", []float32{100, 100}}, {"short", []float32{0.1, 0}}},
			[]float32{1, 0}, 1, []string{"short"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex(2, DefaultIndexOptions())
			model := map[string][]float32{}
			for _, it := range tc.items {
				if err := x.Put(it.key, it.v); err != nil {
					t.Fatal(err)
				}
				model[it.key] = mustUnit(t, it.v)
			}
			got := x.Exact(tc.q, tc.k)
			keys := []string{}
			for _, h := range got {
				keys = append(keys, h.Key)
			}
			if !slices.Equal(keys, tc.want) {
				t.Fatalf("Exact keys %v, want %v", keys, tc.want)
			}
			if want := bruteTopK(t, model, tc.q, tc.k); !slices.Equal(got, want) {
				t.Fatalf("Exact %v, brute force %v", got, want)
			}
			s, err := x.Search(tc.q, tc.k) // below ExactBelow: the same
			if err != nil || !slices.Equal(s, got) {
				t.Fatalf("Search %v %v, Exact %v", s, err, got)
			}
		})
	}
}

func TestSyntheticVectors(t *testing.T) {
	a := SyntheticVectors(1, 500, 20)
	b := SyntheticVectors(1, 500, 20)
	c := SyntheticVectors(2, 500, 20)
	if len(a) != 500 || len(a[0]) != 20 {
		t.Fatalf("shape %d×%d", len(a), len(a[0]))
	}
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatal("same seed, different vectors")
	}
	if slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("different seeds, same vectors")
	}
	for i, v := range a {
		for _, f := range v {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				t.Fatalf("vector %d: %v", i, v)
			}
		}
	}
	// Clustered: a vector's nearest neighbour is far nearer than a random
	// other vector, on average. Uniform random directions in 20 dimensions
	// would give about the same cosine for both.
	x := NewIndex(20, DefaultIndexOptions())
	for i, v := range a {
		if err := x.Put(fmt.Sprint(i), v); err != nil {
			t.Fatal(err)
		}
	}
	var nn, random float64
	for i := range 100 {
		h := x.Exact(a[i], 2) // itself, then its nearest
		nn += float64(h[1].Score)
		random += float64(dot(mustUnit(t, a[i]), mustUnit(t, a[(i*7+250)%500])))
	}
	nn, random = nn/100, random/100
	t.Logf("mean cosine: nearest neighbour %.3f, random pair %.3f", nn, random)
	if nn < random+0.1 {
		t.Fatalf("not clustered: nearest %.3f, random %.3f", nn, random)
	}
}

func BenchmarkExact10k(b *testing.B) {
	const n, dim = 10000, 100
	vecs := SyntheticVectors(1, n+1, dim)
	x := NewIndex(dim, DefaultIndexOptions())
	for i, v := range vecs[:n] {
		if err := x.Put(fmt.Sprint(i), v); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		x.Exact(vecs[n], 10)
	}
}

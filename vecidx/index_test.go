package vecidx

import (
	"errors"
	"fmt"
	"math"
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

func checkIndex(t rapid.TB, x *Index, model map[string][]float32) {
	t.Helper()
	st := x.Stats()
	if st.Vectors != len(model) || x.Len() != len(model) {
		t.Fatalf("stats %v, Len %d, model has %d keys", st, x.Len(), len(model))
	}
	if st.Pending > x.opts.PendingMax+1 {
		t.Fatalf("%d pending, PendingMax %d", st.Pending, x.opts.PendingMax)
	}
	checkGraph(t, x.cur)
	if x.old != nil {
		checkGraph(t, x.old)
	}
	for _, e := range x.entries {
		if want := model[e.key]; !slices.Equal(e.vec, want) {
			t.Fatalf("key %q holds %v, model %v", e.key, e.vec, want)
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

// TestIndexStateMachine runs random Puts, Removes, Work and searches against
// a map of normalised vectors. Small integer components make ties and
// repeated vectors common; small M and PendingMax make pruning and
// back-pressure common; the churn action drives graphs past the rebuild
// threshold.
func TestIndexStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const dim = 4
		o := DefaultHNSWOptions()
		o.M = rapid.IntRange(2, 4).Draw(t, "M")
		o.EfConstruction = rapid.IntRange(1, 16).Draw(t, "efConstruction")
		o.EfSearch = rapid.IntRange(1, 16).Draw(t, "efSearch")
		o.ExactBelow = rapid.SampledFrom([]int{0, 0, 8, 1000}).Draw(t, "exactBelow")
		o.PendingMax = rapid.IntRange(1, 20).Draw(t, "pendingMax")
		o.Seed = rapid.Uint64().Draw(t, "seed")
		x := NewIndex(dim, o)
		model := map[string][]float32{}
		keyGen := rapid.Custom(func(t *rapid.T) string {
			return fmt.Sprintf("k%02d", rapid.IntRange(0, 39).Draw(t, "key"))
		})
		vecGen := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) float32 {
			return float32(rapid.IntRange(-3, 3).Draw(t, "c"))
		}), dim, dim)
		put := func(t *rapid.T, key string, v []float32) {
			err := x.Put(key, v)
			if slices.Equal(v, make([]float32, dim)) {
				if !errors.Is(err, ErrZero) {
					t.Fatalf("Put of a zero vector: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			model[key] = mustUnit(t, v)
		}
		remove := func(key string) {
			x.Remove(key)
			delete(model, key)
		}
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				put(t, keyGen.Draw(t, "key"), vecGen.Draw(t, "v"))
			},
			"remove": func(t *rapid.T) {
				remove(keyGen.Draw(t, "key"))
			},
			"churn": func(t *rapid.T) {
				n := rapid.IntRange(1, 60).Draw(t, "n")
				for range n {
					if rapid.IntRange(0, 3).Draw(t, "op") == 0 {
						remove(keyGen.Draw(t, "key"))
					} else {
						put(t, keyGen.Draw(t, "key"), vecGen.Draw(t, "v"))
					}
				}
			},
			"work": func(t *rapid.T) {
				n := rapid.IntRange(0, 40).Draw(t, "n")
				before := x.remaining()
				left := x.Work(n)
				if left != x.remaining() {
					t.Fatalf("Work(%d) reported %d remaining, %d remain", n, left, x.remaining())
				}
				// A rebuild that starts inside Work (the new graph itself
				// collected garbage) adds copies; otherwise Work only
				// shrinks the backlog, and a budget ≥ the backlog clears it.
				if x.old == nil && (left > before || n >= before && left != 0) {
					t.Fatalf("Work(%d) left %d of %d", n, left, before)
				}
			},
			"search": func(t *rapid.T) {
				q := vecGen.Filter(func(v []float32) bool { return !slices.Equal(v, make([]float32, dim)) }).Draw(t, "q")
				k := rapid.IntRange(1, 12).Draw(t, "k")
				got, err := x.Search(q, k)
				if err != nil {
					t.Fatal(err)
				}
				checkHits(t, model, q, k, got)
				want := bruteTopK(t, model, q, k)
				if len(model) < o.ExactBelow && !slices.Equal(got, want) {
					t.Fatalf("below ExactBelow: Search %v, brute force %v", got, want)
				}
				if ex := x.Exact(q, k); !slices.Equal(ex, want) {
					t.Fatalf("Exact %v, brute force %v", ex, want)
				}
			},
			"": func(t *rapid.T) { checkIndex(t, x, model) },
		})
	})
}

// TestPutRemoveSemantics walks one key through its life, with its vector
// pending and again after Work has put it in the graph.
func TestPutRemoveSemantics(t *testing.T) {
	v1 := []float32{1, 0, 0}
	v2 := []float32{0, 2, 0}
	filler := [][]float32{{0, 0, 1}, {0, 1, 1}, {1, 0, 1}}
	for _, worked := range []bool{false, true} {
		t.Run(fmt.Sprintf("worked=%v", worked), func(t *testing.T) {
			x := NewIndex(3, graphOptions())
			for i, v := range filler {
				if err := x.Put(fmt.Sprintf("f%d", i), v); err != nil {
					t.Fatal(err)
				}
			}
			settle := func() {
				if worked {
					for x.Work(100) > 0 {
					}
				}
			}
			scoreOf := func(q []float32, key string) (float32, bool) {
				hits, err := x.Search(q, 10)
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range hits {
					if h.Key == key {
						return h.Score, true
					}
				}
				return 0, false
			}
			steps := []struct {
				name    string
				do      func() error
				found   bool
				score   float32 // against query v1
				vectors int
			}{
				{"put", func() error { return x.Put("k", v1) }, true, 1, 4},
				{"replace", func() error { return x.Put("k", v2) }, true, 0, 4},
				{"put same again", func() error { return x.Put("k", v2) }, true, 0, 4},
				{"remove", func() error { x.Remove("k"); return nil }, false, 0, 3},
				{"remove again", func() error { x.Remove("k"); return nil }, false, 0, 3},
				{"put again", func() error { return x.Put("k", v1) }, true, 1, 4},
				{"wrong dim keeps old", func() error { return x.Put("k", []float32{0, 1}) }, true, 1, 4},
				{"zero keeps old", func() error { return x.Put("k", []float32{0, 0, 0}) }, true, 1, 4},
				{"NaN keeps old", func() error { return x.Put("k", []float32{float32(math.NaN()), 0, 0}) }, true, 1, 4},
				{"Inf keeps old", func() error { return x.Put("k", []float32{float32(math.Inf(1)), 0, 0}) }, true, 1, 4},
			}
			for _, s := range steps {
				_ = s.do()
				settle()
				score, found := scoreOf(v1, "k")
				if found != s.found || score != s.score {
					t.Fatalf("%s: found %v score %v, want %v %v", s.name, found, score, s.found, s.score)
				}
				if st := x.Stats(); st.Vectors != s.vectors || x.Len() != s.vectors {
					t.Fatalf("%s: stats %v, want %d vectors", s.name, st, s.vectors)
				}
			}
		})
	}
}

func TestPutErrors(t *testing.T) {
	x := NewIndex(3, DefaultHNSWOptions())
	tests := []struct {
		v    []float32
		want error
	}{
		{[]float32{1, 2}, ErrDim},
		{[]float32{1, 2, 3, 4}, ErrDim},
		{nil, ErrDim},
		{[]float32{0, 0, 0}, ErrZero},
		{[]float32{1, float32(math.NaN()), 0}, ErrNotFinite},
		{[]float32{float32(math.Inf(-1)), 0, 0}, ErrNotFinite},
		{[]float32{1e-40, 0, 0}, nil}, // subnormal still has a direction
		{[]float32{3e38, 3e38, 3e38}, nil},
	}
	for _, tc := range tests {
		if err := x.Put("k", tc.v); !errors.Is(err, tc.want) {
			t.Errorf("Put(%v) = %v, want %v", tc.v, err, tc.want)
		}
		if _, err := x.Search(tc.v, 1); !errors.Is(err, tc.want) {
			t.Errorf("Search(%v) = %v, want %v", tc.v, err, tc.want)
		}
	}
	for _, k := range []int{-1, 0, KMax + 1} {
		if _, err := x.Search([]float32{1, 0, 0}, k); !errors.Is(err, ErrBadK) {
			t.Errorf("Search k=%d: %v, want ErrBadK", k, err)
		}
		if h := x.Exact([]float32{1, 0, 0}, k); h != nil {
			t.Errorf("Exact k=%d: %v, want nil", k, h)
		}
	}
	if _, err := x.Search([]float32{1, 0, 0}, KMax); err != nil {
		t.Errorf("Search k=KMax: %v", err)
	}
}

// TestBackPressure: writes that never leave idle time for Work still keep
// the pending backlog at PendingMax, because Put then does the work.
func TestBackPressure(t *testing.T) {
	o := graphOptions()
	o.PendingMax = 50
	vecs := SyntheticVectors(1, 2000, 16)
	x := NewIndex(16, o)
	for i, v := range vecs {
		if err := x.Put(fmt.Sprintf("k%d", i), v); err != nil {
			t.Fatal(err)
		}
		if p := x.Stats().Pending; p > o.PendingMax+1 {
			t.Fatalf("after %d puts: %d pending, PendingMax %d", i+1, p, o.PendingMax)
		}
	}
	if st := x.Stats(); st.Graph < len(vecs)-o.PendingMax-1 {
		t.Fatalf("stats %v: back-pressure did not insert into the graph", st)
	}
}

// TestRebuild deletes most of a graph's keys and replaces others, checks
// that a rebuild starts, keeps answering correctly while it runs (with
// writes to keys in both graphs), and ends with no deleted nodes left.
func TestRebuild(t *testing.T) {
	const n, dim = 600, 16
	vecs := SyntheticVectors(2, n+100, dim)
	x := buildIndex(t, dim, graphOptions(), vecs[:n])
	model := map[string][]float32{}
	for i, v := range vecs[:n] {
		model[fmt.Sprintf("v%d", i)] = mustUnit(t, v)
	}
	for i := 0; i < n; i += 3 { // remove a third, replace another third
		x.Remove(fmt.Sprintf("v%d", i))
		delete(model, fmt.Sprintf("v%d", i))
		key := fmt.Sprintf("v%d", i+1)
		if err := x.Put(key, vecs[n+i%100]); err != nil {
			t.Fatal(err)
		}
		model[key] = mustUnit(t, vecs[n+i%100])
	}
	if x.old == nil {
		t.Fatalf("no rebuild with stats %v", x.Stats())
	}
	check := func() {
		t.Helper()
		checkIndex(t, x, model)
		for _, q := range vecs[n : n+20] {
			got, err := x.Search(q, 10)
			if err != nil {
				t.Fatal(err)
			}
			checkHits(t, model, q, 10, got)
			if len(got) != 10 {
				t.Fatalf("%d hits of 10", len(got))
			}
		}
	}
	check()
	for step := 0; x.old != nil; step++ {
		x.Work(25)
		// Writes during the rebuild land on keys in the old graph, the new
		// graph and pending alike.
		key := fmt.Sprintf("v%d", (step*7)%n)
		if step%2 == 0 {
			x.Remove(key)
			delete(model, key)
		} else {
			if err := x.Put(key, vecs[step%n]); err != nil {
				t.Fatal(err)
			}
			model[key] = mustUnit(t, vecs[step%n])
		}
		check()
	}
	for x.Work(100) > 0 {
	}
	st := x.Stats()
	if st.Pending != 0 || st.Graph != len(model) || st.Deleted > len(model)/2+rebuildDeadMin {
		t.Fatalf("after the rebuild: %v, %d keys", st, len(model))
	}
	check()
	r := recallAt(t, x, vecs[n:], 10)
	if r < 0.9 {
		t.Fatalf("recall@10 after the rebuild %.3f", r)
	}
}

// TestIndexDeterministic replays one mixed script twice with one seed: the
// graphs and every answer must match.
func TestIndexDeterministic(t *testing.T) {
	run := func(seed uint64) (*Index, [][]Hit) {
		o := graphOptions()
		o.Seed = seed
		o.PendingMax = 40
		const dim = 24
		vecs := SyntheticVectors(9, 1200, dim)
		x := NewIndex(dim, o)
		var answers [][]Hit
		r := splitmix{s: 77} // the script
		for i := range 4000 {
			key := fmt.Sprintf("k%d", r.next()%500)
			switch r.next() % 10 {
			case 0, 1:
				x.Remove(key)
			case 2:
				x.Work(int(r.next() % 30))
			case 3:
				h, err := x.Search(vecs[1000+i%200], 10)
				if err != nil {
					t.Fatal(err)
				}
				answers = append(answers, h)
			default:
				if err := x.Put(key, vecs[r.next()%1000]); err != nil {
					t.Fatal(err)
				}
			}
		}
		return x, answers
	}
	a, ansA := run(5)
	b, ansB := run(5)
	if !graphsEqual(a.cur, b.cur) || !slices.EqualFunc(ansA, ansB, slices.Equal) {
		t.Fatal("same script and seed: different graphs or answers")
	}
	if a.Stats() != b.Stats() {
		t.Fatalf("stats differ: %v vs %v", a.Stats(), b.Stats())
	}
	c, _ := run(6)
	if graphsEqual(a.cur, c.cur) {
		t.Fatal("a different seed built the same graph")
	}
	// Reset restarts the generator: refilled, the index is the new one.
	a.Reset()
	if a.Len() != 0 || a.Stats().Bytes != 0 {
		t.Fatalf("after Reset: %v", a.Stats())
	}
	if h, err := a.Search([]float32{1}, 1); !errors.Is(err, ErrDim) || h != nil {
		t.Fatalf("Search on an empty index with a bad query: %v %v", h, err)
	}
}

func TestStats(t *testing.T) {
	const dim = 32
	vecs := SyntheticVectors(4, 3000, dim)
	x := NewIndex(dim, graphOptions())
	var last int64
	for i, v := range vecs {
		if err := x.Put(fmt.Sprintf("key-%d", i), v); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			x.Work(1 << 20)
			st := x.Stats()
			if st.Bytes <= last || st.Bytes < int64(st.Vectors*dim*4) {
				t.Fatalf("bytes %d after %d, last %d", st.Bytes, st.Vectors, last)
			}
			last = st.Bytes
		}
	}
	st := x.Stats()
	if st.Vectors != 3000 || st.Graph != 3000 || st.Pending != 0 || st.Deleted != 0 || st.Layers < 2 {
		t.Fatalf("stats %v", st)
	}
	// Vectors plus graph links: well under 2 KiB a vector at 32 dimensions.
	if per := st.Bytes / 3000; per > 2048 {
		t.Fatalf("%d bytes per vector", per)
	}
}

func TestNewIndexRefusesBadOptions(t *testing.T) {
	bad := []func(*HNSWOptions){
		func(o *HNSWOptions) { o.M = 1 },
		func(o *HNSWOptions) { o.M = MMax + 1 },
		func(o *HNSWOptions) { o.EfConstruction = 0 },
		func(o *HNSWOptions) { o.EfSearch = EfMax + 1 },
		func(o *HNSWOptions) { o.ExactBelow = -1 },
		func(o *HNSWOptions) { o.PendingMax = 0 },
	}
	for i, f := range bad {
		o := DefaultHNSWOptions()
		f(&o)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: NewIndex accepted %+v", i, o)
				}
			}()
			NewIndex(8, o)
		}()
	}
	for _, dim := range []int{0, DimMax + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewIndex accepted dim %d", dim)
				}
			}()
			NewIndex(dim, DefaultHNSWOptions())
		}()
	}
}

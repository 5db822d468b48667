package vecidx

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// checkGraph asserts a graph's structural invariants: list sizes within
// their limits, links only between linked nodes on the same layer, no
// self-links or duplicate links, each link's kept similarity that of the
// two codes, no links at all for a node not linked (or left out as dead),
// the entry point on the top layer, and the live and dead counts.
func checkGraph(t rapid.TB, g *graph) {
	t.Helper()
	live := 0
	for i := range g.len() {
		id := uint32(i)
		if !g.dead[id] {
			live++
		}
		for lc := 0; lc <= int(g.level[id]); lc++ {
			ns := g.links(id, lc)
			if i >= g.linked && len(ns) > 0 {
				t.Fatalf("node %d is not linked yet but has links %v", id, ns)
			}
			limit := g.m
			if lc == 0 {
				limit = g.m0
			}
			if len(ns) > limit {
				t.Fatalf("node %d layer %d: %d links, limit %d", id, lc, len(ns), limit)
			}
			seen := map[uint32]bool{}
			_, sims := g.list(id, lc)
			g.setQueryNode(id)
			for i, n := range ns {
				if n == id || int(n) >= g.linked || int(g.level[n]) < lc || seen[n] {
					t.Fatalf("node %d layer %d: bad link %d in %v", id, lc, n, ns)
				}
				seen[n] = true
				if sims[i] != g.sim(n) {
					t.Fatalf("node %d layer %d: link %d keeps similarity %v, the codes' is %v", id, lc, n, sims[i], g.sim(n))
				}
			}
		}
	}
	if live != g.live || g.len()-live != g.deadN {
		t.Fatalf("live %d dead %d, counted %d of %d", g.live, g.deadN, live, g.len())
	}
	if g.top >= 0 && (int(g.level[g.entry]) != g.top || int(g.entry) >= g.linked) {
		t.Fatalf("entry point %d at level %d, top %d, %d linked", g.entry, g.level[g.entry], g.top, g.linked)
	}
}

// insertAll adds and links units as nodes of a new graph, with levels
// drawn from a generator seeded with seed.
func insertAll(dim, m, efc int, units [][]float32, seed uint64, simple bool) *graph {
	g := newGraph(dim, m, efc)
	g.simpleSelect = simple
	r := splitmix{s: seed}
	for _, u := range units {
		g.add(nil, u, g.randomLevel(&r))
		g.link()
	}
	return g
}

func units(t testing.TB, vecs [][]float32) [][]float32 {
	out := make([][]float32, len(vecs))
	for i, v := range vecs {
		u, err := unitCopy(v, len(v))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = u
	}
	return out
}

// TestLinkBackPrunes checks how a full neighbour list takes a new node.
// Node 0 is e0 and its list holds four nodes c·e0 + √(1-c²)·e_i on
// distinct axes, so their similarity to node 0 is c and to each other
// c·c', less than c: no neighbour hides another. The new node is one more
// such node, or sits near one of them, and the list must keep or drop it
// by the heuristic's test.
func TestLinkBackPrunes(t *testing.T) {
	const dim = 8
	list := []float64{0.9, 0.8, 0.7, 0.6} // nodes 1..4 on axes 1..4
	tests := []struct {
		name string
		add  []float32 // node 5
		want []uint32
	}{
		// Nearer than the farthest, hides none: the farthest (node 4) goes.
		{"nearest", unitAxis(dim, 5, 0.95), []uint32{1, 2, 3, 5}},
		// Farther than every neighbour and hides none: left out.
		{"farthest", unitAxis(dim, 5, 0.5), []uint32{1, 2, 3, 4}},
		// Between nodes 1 and 2, but nearer to node 1 (same axis, 0.9)
		// than to node 0: reached through node 1, left out.
		{"hidden", unitAxis(dim, 1, 0.85), []uint32{1, 2, 3, 4}},
		// Near node 3 (axis 3, 0.7) and nearer to node 0 than node 3 is:
		// node 3 is reached through it, and goes, though node 4 is farther.
		{"hides", unitAxis(dim, 3, 0.75), []uint32{1, 2, 4, 5}},
	}
	for _, tc := range tests {
		g := newGraph(dim, 2, 8)
		g.m0 = 4 // a small full list
		g.add(nil, unitAxis(dim, 0, 1), 0)
		for i, c := range list {
			g.add(nil, unitAxis(dim, i+1, c), 0)
		}
		g.add(nil, tc.add, 0)
		g.linked = g.len()
		g.setQueryNode(0)
		var full []cand
		for id := uint32(1); id <= 4; id++ {
			full = append(full, cand{g.sim(id), id})
		}
		g.setLinks(0, 0, full)
		g.setQueryNode(5)
		g.linkBack(0, 5, g.sim(0), 0)
		got := slices.Clone(g.links(0, 0))
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: links %v, want %v", tc.name, got, tc.want)
		}
		_, sims := g.list(0, 0)
		g.setQueryNode(0)
		for i, id := range g.links(0, 0) {
			if sims[i] != g.sim(id) {
				t.Errorf("%s: link %d keeps similarity %v, its code's is %v", tc.name, id, sims[i], g.sim(id))
			}
		}
	}
}

// unitAxis is c·e0 + √(1-c²)·e_axis.
func unitAxis(dim, axis int, c float64) []float32 {
	v := make([]float32, dim)
	v[0] = float32(c)
	if axis > 0 {
		v[axis] = float32(math.Sqrt(1 - c*c))
	}
	return v
}

// TestHeuristicKeepsDirections checks Algorithm 4 on a hand-made case: a
// base with two groups of candidates in other directions, one nearer than
// the other. The heuristic must take the nearest of each group before any
// second member of the nearer group, and keepPrunedConnections must top
// the list up. The vectors lie in 16 dimensions, on axes 1–3 (group A,
// near each other) and 4–5 (group B, near each other), so that their
// 4-bit codes keep the relations.
func TestHeuristicKeepsDirections(t *testing.T) {
	const dim = 16
	g := newGraph(dim, 16, 8)
	vec := func(c0 float64, axes []int, w []float64) []float32 {
		v := make([]float32, dim)
		v[0] = float32(c0)
		for i, a := range axes {
			v[a] = float32(w[i])
		}
		u, _ := unitCopy(v, dim)
		return u
	}
	base := vec(1, nil, nil)
	// Group A: mostly axis 1, similar to the base by 0.64–0.78; group B:
	// mostly axis 4, by about 0.5.
	cands := [][]float32{
		vec(1, []int{1, 2}, []float64{0.8, 0.1}),
		vec(1, []int{1, 3}, []float64{1.0, 0.15}),
		vec(1, []int{1, 2, 3}, []float64{1.2, 0.1, 0.1}),
		vec(1, []int{4, 5}, []float64{1.5, 0.1}),
		vec(1, []int{4, 5}, []float64{2.0, 0.2}),
	}
	for _, c := range cands {
		g.add(nil, c, 0)
	}
	g.linked = g.len()
	g.setQuery(base)
	sorted := make([]cand, len(cands))
	for i := range cands {
		sorted[i] = cand{g.sim(uint32(i)), uint32(i)}
	}
	slices.SortFunc(sorted, cmpNearer)
	order := make([]uint32, len(sorted))
	for i, c := range sorted {
		order[i] = c.id
	}
	if !slices.Equal(order, []uint32{0, 1, 2, 3, 4}) {
		t.Fatalf("candidates by similarity to the base: %v", order)
	}
	tests := []struct {
		m    int
		want []uint32
	}{
		{1, []uint32{0}},
		{2, []uint32{0, 3}},          // 1 and 2 are nearer to 0 than to the base
		{3, []uint32{0, 3, 1}},       // topped up with the nearest set-aside one
		{5, []uint32{0, 3, 1, 2, 4}}, // everything, heuristic picks first
	}
	for _, tc := range tests {
		got := g.heuristic(sorted, tc.m, nil)
		ids := make([]uint32, len(got))
		for i, c := range got {
			ids[i] = c.id
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("m=%d: chose %v, want %v", tc.m, ids, tc.want)
		}
	}
}

// TestHeuristicMatters shows the recall test can fail: the same graph
// built with the paper's simple selection (the m nearest candidates,
// Algorithm 3) instead of the heuristic, with small lists, finds clearly
// fewer of the true neighbours on clustered data. If it did not, the recall
// tests would not be measuring the heuristic.
func TestHeuristicMatters(t *testing.T) {
	const n, nq, dim, k = 3000, 100, 64, 10
	all := units(t, SyntheticVectors(11, n+nq, dim))
	recall := func(simple bool) float64 {
		g := insertAll(dim, 4, 32, all[:n], 1, simple)
		checkGraph(t, g)
		found := 0
		for _, q := range all[n:] {
			exact := make([]cand, n)
			for i, u := range all[:n] {
				exact[i] = cand{dot(q, u), uint32(i)}
			}
			slices.SortFunc(exact, cmpNearer)
			got := graphTopK(g, all, q, k, 16)
			for _, w := range exact[:k] {
				if slices.ContainsFunc(got, func(c cand) bool { return c.id == w.id }) {
					found++
				}
			}
		}
		return float64(found) / float64(nq*k)
	}
	heuristic, simple := recall(false), recall(true)
	t.Logf("M=4, ef=16: recall@10 with the heuristic %.3f, with simple selection %.3f", heuristic, simple)
	if simple > heuristic-0.05 {
		t.Fatalf("simple selection (%.3f) is not clearly worse than the heuristic (%.3f)", simple, heuristic)
	}
}

// graphTopK is what Index.Search does with a graph's result set: the
// nodes scored again exactly (units[id] is node id's vector), best k.
func graphTopK(g *graph, units [][]float32, q []float32, k, ef int) []cand {
	var out []cand
	for _, c := range g.search(q, k, ef) {
		out = append(out, cand{dot(q, units[c.id]), c.id})
	}
	slices.SortFunc(out, cmpNearer)
	return out[:min(k, len(out))]
}

// TestVisitedStampWraps: searches return the same results across the
// wrap of the 16-bit visited stamps, which clears the marks; a stale mark
// would hide a node from the search.
func TestVisitedStampWraps(t *testing.T) {
	const n, dim = 2000, 16
	all := units(t, SyntheticVectors(5, n+20, dim))
	g := insertAll(dim, 8, 32, all[:n], 3, false)
	want := make([][]cand, 20)
	for i, q := range all[n:] {
		want[i] = graphTopK(g, all, q, 10, 40)
	}
	g.stamp = math.MaxUint16 - 5
	for round := range 3 {
		for i, q := range all[n:] {
			if got := graphTopK(g, all, q, 10, 40); !slices.Equal(got, want[i]) {
				t.Fatalf("round %d query %d: %v, want %v (stamp %d)", round, i, got, want[i], g.stamp)
			}
		}
	}
}

// TestLinkSkipsDead: a node killed before its turn to be linked gets no
// links and no other node links to it; the graph stays searchable.
func TestLinkSkipsDead(t *testing.T) {
	const n, dim = 300, 16
	all := units(t, SyntheticVectors(8, n, dim))
	g := newGraph(dim, 4, 16)
	r := splitmix{s: 2}
	for _, u := range all {
		g.add(nil, u, g.randomLevel(&r))
	}
	for id := 0; id < n; id += 3 {
		g.markDead(uint32(id))
	}
	for g.linked < g.len() {
		g.link()
	}
	checkGraph(t, g)
	for id := range n {
		for lc := 0; lc <= int(g.level[id]); lc++ {
			for _, to := range g.links(uint32(id), lc) {
				if to%3 == 0 {
					t.Fatalf("node %d links to dead node %d", id, to)
				}
			}
		}
	}
	for _, c := range g.search(all[0], 10, 50) {
		if g.dead[c.id] {
			t.Fatalf("search found dead node %d", c.id)
		}
	}
}

// TestLevelDistribution checks the level generator against the paper's
// P(level ≥ l) = M^-l.
func TestLevelDistribution(t *testing.T) {
	const draws, m = 200000, 16
	g := newGraph(4, m, 8)
	r := splitmix{s: 5}
	counts := make([]int, levelMax+1)
	for range draws {
		counts[g.randomLevel(&r)]++
	}
	atLeast := draws
	for l := 0; l <= 3; l++ {
		want := draws * math.Pow(m, -float64(l))
		if got := float64(atLeast); math.Abs(got-want) > 5*math.Sqrt(want)+1 {
			t.Errorf("level ≥ %d: %v draws, want about %.0f", l, got, want)
		}
		atLeast -= counts[l]
	}
}

// BenchmarkLink: linking nodes into a segment's graph of 4,096 nodes
// with the default M and SegmentEfConstruction, on clustered vectors of
// 100 dimensions: what every write pays.
//
//	go test ./vecidx/ -run '^$' -bench Link
func BenchmarkLink(b *testing.B) {
	const n, dim = 4096, 100
	all := units(b, SyntheticVectors(12, n, dim))
	o := DefaultIndexOptions()
	b.ResetTimer()
	links := 0
	for b.Loop() {
		insertAll(dim, o.M, o.SegmentEfConstruction, all, 1, false)
		links += n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(links)/1e3, "µs/link")
}

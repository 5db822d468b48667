package vecidx

import (
	"fmt"
	"slices"
	"testing"
)

// TestTrainerFindsClusters: eight tight clusters around eight axes, and
// eight centroids; whatever sample vectors the centroids start from,
// k-means ends with one centroid per cluster, so that each list holds
// exactly one cluster.
func TestTrainerFindsClusters(t *testing.T) {
	const dim, k, per = 16, 8, 100
	r := splitmix{s: 4}
	var entries []*entry
	for i := range k * per {
		c := i % k // interleaved, so that the evenly spaced first centroids are not one per cluster
		v := make([]float32, dim)
		v[c] = 1
		for j := range v {
			v[j] += float32(0.05 * r.gauss())
		}
		u, err := unitCopy(v, dim)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, &entry{key: fmt.Sprint(c), vec: u, pendingAt: -1})
	}
	tr := newTrainer(dim, k, entries)
	for steps := 0; !tr.done(); steps++ {
		if steps > 1000 {
			t.Fatal("training does not end")
		}
		left := tr.left()
		tr.step(100)
		if !tr.done() && tr.left() >= left {
			t.Fatalf("a step did no work: %d left, was %d", tr.left(), left)
		}
	}
	p := tr.partition()
	fwd := make([]uint64, p.words)
	nib := make([]uint64, p.nw)
	for _, e := range entries {
		encode(fwd, e.vec, p.levels)
		p.add(e, p.nearest(fwd), nib, encodeNibbles(nib, e.vec))
	}
	var clusters []string
	for c, l := range p.lists {
		if len(l.ents) != per {
			t.Fatalf("list %d holds %d vectors, want %d", c, len(l.ents), per)
		}
		for _, e := range l.ents {
			if e.key != l.ents[0].key {
				t.Fatalf("list %d mixes clusters %s and %s", c, l.ents[0].key, e.key)
			}
		}
		clusters = append(clusters, l.ents[0].key)
	}
	slices.Sort(clusters)
	if len(slices.Compact(clusters)) != k {
		t.Fatalf("lists hold clusters %v", clusters)
	}
}

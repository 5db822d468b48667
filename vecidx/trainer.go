package vecidx

import "math"

// A trainer finds a partition's centroids: spherical k-means (Lloyd's
// algorithm with centroids normalised, Dhillon and Modha 2001) on a sample
// of the index's vectors, in steps of bounded work, so that a node trains
// in its spare time without a long pause (see Index.Work).
//
// The sample is samplePerList vectors per centroid, taken evenly spaced
// from the index's key table and copied, so that Puts and Removes during
// training do not disturb it. The first centroids are chosen from the
// sample by k-means++ (Arthur and Vassilvitskii 2007: each next one a
// sample vector drawn with probability proportional to its squared
// distance from the nearest chosen so far), which spreads them over the
// data where evenly spaced picks can land in a few clusters. trainIters
// rounds of assignment (each sample vector to its nearest centroid, by
// 8-bit codes as in the partition) and update (each centroid the
// normalised mean of its vectors) follow. A centroid left with no vectors
// takes the sample vector farthest from its own centroid instead. The
// draws come from a generator seeded with the sample's size, and
// everything else is in a fixed order with integer or float64 sums, so
// the same sample gives the same centroids.
type trainer struct {
	dim, words, levels, k int
	trainN                int // vectors in the index when training began

	sample []float32 // the sample's unit vectors, dim each
	codes  []uint64  // their forward codes, words each
	scales []float32 // and the codes' scales
	cents  []float32 // the centroids, dim each
	rev    []uint64  // their reversed codes, words each
	revS   []float32 // and scales
	sums   []float64 // this round's sums per centroid, dim each
	counts []int     // and counts
	iter   int       // rounds done
	at     int       // sample vectors assigned in this round

	// k-means++: chosen centroids so far, and per sample vector its
	// distance (1 - similarity) to the nearest of them.
	chosen int
	dist   []float64
	rng    splitmix
	// Per round, the sample vector farthest from its centroid, which
	// re-seeds a centroid left empty.
	worst    int
	worstSim float32
}

const (
	// samplePerList sample vectors per centroid.
	samplePerList = 32
	// trainIters rounds of k-means. On cmd/bench's value vectors, recall
	// at a given scan share was the same (within the 0.005 of measuring it
	// on 200 queries) with 32 samples a list and 6 rounds as with 40 and
	// 8, for 40% less training work.
	trainIters = 6
)

// newTrainer starts training k centroids on the vectors of entries (all
// current).
func newTrainer(dim, k int, entries []*entry) *trainer {
	n := len(entries)
	if k < 1 || n < k {
		panic("vecidx: training needs at least one vector per centroid")
	}
	s := min(n, samplePerList*k)
	t := &trainer{
		dim: dim, words: codeWords(dim), levels: codeLevels(dim), k: k, trainN: n,
		sample: make([]float32, s*dim),
		codes:  make([]uint64, s*codeWords(dim)),
		scales: make([]float32, s),
		cents:  make([]float32, k*dim),
		rev:    make([]uint64, k*codeWords(dim)),
		revS:   make([]float32, k),
		sums:   make([]float64, k*dim),
		counts: make([]int, k),
	}
	for i := range s {
		v := entries[int(int64(i)*int64(n)/int64(s))].vec
		copy(t.sample[i*dim:(i+1)*dim], v)
		t.scales[i] = encode(t.codes[i*t.words:(i+1)*t.words], v, t.levels)
	}
	t.dist = make([]float64, s)
	t.rng = splitmix{s: uint64(s)}
	t.worstSim = float32(math.Inf(1))
	return t
}

func (t *trainer) samples() int { return len(t.sample) / t.dim }

func (t *trainer) encodeCents() {
	for c := range t.k {
		rev := t.rev[c*t.words : (c+1)*t.words]
		t.revS[c] = encode(rev, t.cents[c*t.dim:(c+1)*t.dim], t.levels)
		reverse(rev, rev)
	}
}

// done reports whether the centroids are trained.
func (t *trainer) done() bool { return t.iter >= trainIters }

// left is the similarities training still has to compute.
func (t *trainer) left() int {
	if t.done() {
		return 0
	}
	return (t.k-t.chosen)*t.samples() + ((trainIters-t.iter)*t.samples()-t.at)*t.k
}

// step does about sims similarities of training (at least one centroid
// chosen or one sample vector assigned), ending the round when the sample
// is through.
func (t *trainer) step(sims int) {
	if t.done() {
		return
	}
	s := t.samples()
	if t.chosen < t.k {
		for did := 0; t.chosen < t.k && (did == 0 || did+s <= sims); did += s {
			t.choose()
		}
		if t.chosen == t.k {
			t.encodeCents()
		}
		return
	}
	for did := 0; t.at < s && (did == 0 || did+t.k <= sims); did += t.k {
		i := t.at
		t.at++
		best, bestSim := t.nearest(t.codes[i*t.words : (i+1)*t.words : (i+1)*t.words])
		if bestSim < t.worstSim {
			t.worst, t.worstSim = i, bestSim
		}
		t.counts[best]++
		sum := t.sums[best*t.dim : (best+1)*t.dim]
		for j, f := range t.sample[i*t.dim : (i+1)*t.dim] {
			sum[j] += float64(f)
		}
	}
	if t.at == s {
		t.update()
	}
}

// nearest is the centroid nearest to the sample vector of forward code
// fwd, and its similarity (up to the vector's scale).
func (t *trainer) nearest(fwd []uint64) (int, float32) {
	best, bestSim := 0, float32(math.Inf(-1))
	for c := range t.k {
		d := float32(t.revS[c]) * float32(codeDot(fwd, t.rev[c*t.words:(c+1)*t.words]))
		if d > bestSim {
			best, bestSim = c, d
		}
	}
	return best, bestSim
}

// choose picks the next first centroid by k-means++ and updates the
// sample's distances to the chosen ones.
func (t *trainer) choose() {
	s := t.samples()
	i := 0
	if t.chosen > 0 {
		total := 0.0
		for _, d := range t.dist {
			total += d
		}
		// A draw in [0, total): the first vector whose running sum passes
		// it. With every distance 0 (all vectors alike) the first wins.
		x := t.rng.unit() * total
		for acc := 0.0; i < s-1; i++ {
			if acc += t.dist[i]; acc >= x && t.dist[i] > 0 {
				break
			}
		}
	}
	c := t.chosen
	t.chosen++
	copy(t.cents[c*t.dim:(c+1)*t.dim], t.sample[i*t.dim:(i+1)*t.dim])
	rev := t.rev[c*t.words : (c+1)*t.words]
	reverse(rev, t.codes[i*t.words:(i+1)*t.words])
	t.revS[c] = t.scales[i]
	// Distances in the codes' similarity, with both scales, so that they
	// compare across vectors.
	for j, sj := range t.scales {
		fwd := t.codes[j*t.words : (j+1)*t.words : (j+1)*t.words]
		d := 1 - float64(codeSim(sj, t.revS[c], codeDot(fwd, rev)))
		if c == 0 || d < t.dist[j] {
			t.dist[j] = max(d, 0)
		}
	}
}

// update ends a round: each centroid becomes the normalised mean of its
// vectors, or if it has none the sample vector that fit its own centroid
// worst.
func (t *trainer) update() {
	for c := range t.k {
		cent := t.cents[c*t.dim : (c+1)*t.dim]
		sum := t.sums[c*t.dim : (c+1)*t.dim]
		var ss float64
		for _, f := range sum {
			ss += f * f
		}
		if t.counts[c] == 0 || !(ss > 0) {
			i := t.worst
			copy(cent, t.sample[i*t.dim:(i+1)*t.dim])
		} else {
			inv := 1 / math.Sqrt(ss)
			for j, f := range sum {
				cent[j] = float32(f * inv)
			}
		}
		clear(sum)
		t.counts[c] = 0
	}
	t.encodeCents()
	t.at = 0
	t.iter++
	t.worstSim = float32(math.Inf(1))
}

// partition returns an empty partition with the trained centroids.
func (t *trainer) partition() *partition {
	if !t.done() {
		panic("vecidx: partition of an unfinished training")
	}
	return newPartition(t.dim, t.cents, t.trainN)
}

// bytes estimates the trainer's memory.
func (t *trainer) bytes() int64 {
	return int64(len(t.sample))*4 + int64(len(t.codes))*8 + int64(len(t.cents))*4 +
		int64(len(t.rev))*8 + int64(len(t.sums))*8 + int64(t.k)*12 + int64(len(t.dist))*8 + int64(len(t.scales))*4
}

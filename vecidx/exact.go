package vecidx

import "math"

// scan scores every entry against u (a unit vector) and returns the best k,
// best first, ties by key ascending. It is Exact's engine and the whole of
// Search below ExactBelow.
func (x *Index) scan(u []float32, k int, entries []*entry) []Hit {
	h := x.hits[:0]
	for _, e := range entries {
		s := dot(u, e.vec)
		// Most vectors lose to the k-th best by score alone; skip the
		// heap for them without building a Hit.
		if len(h) == k && s < h[0].Score {
			continue
		}
		h.offer(Hit{Key: e.key, Score: s}, k)
	}
	out := h.sorted()
	x.hits = h
	return out
}

// SyntheticVectors returns n vectors of dimension dim drawn from a seeded
// Gaussian mixture shaped like averaged word embeddings: clustered (about
// √n clusters of uneven sizes and spreads), anisotropic (the spread of
// dimension j falls as (1+j)^-¼, an effective dimension near two thirds of
// dim) and sharing a common offset (averaged word vectors share a "common
// discourse" direction, which crowds all cosines upwards). Uniform random
// vectors would make nearest-neighbour search look harder and recall
// figures meaningless for dkv's data; these are what the recall test and
// benchmark use. The same seed gives the same vectors. To draw queries from
// the same mixture, ask for n+q vectors and hold the last q out.
func SyntheticVectors(seed uint64, n, dim int) [][]float32 {
	if n < 0 || dim < 1 {
		panic("vecidx: SyntheticVectors needs n ≥ 0 and dim ≥ 1")
	}
	r := &splitmix{s: seed}
	spread := make([]float64, dim)
	for j := range spread {
		spread[j] = math.Pow(1+float64(j), -0.25)
	}
	common := make([]float64, dim)
	for j := range common {
		common[j] = r.gauss() * spread[j]
	}
	clusters := max(1, int(math.Sqrt(float64(n))))
	centers := make([][]float64, clusters)
	radius := make([]float64, clusters)
	cum := make([]float64, clusters) // cumulative weights ∝ 1/√(i+1)
	total := 0.0
	for i := range centers {
		c := make([]float64, dim)
		for j := range c {
			c[j] = common[j] + r.gauss()*spread[j]
		}
		centers[i] = c
		radius[i] = 0.25 + 0.45*r.unit()
		total += 1 / math.Sqrt(float64(i+1))
		cum[i] = total
	}
	out := make([][]float32, n)
	flat := make([]float32, n*dim)
	for i := range out {
		w := r.unit() * total
		lo, hi := 0, clusters-1 // find the first cluster with cum ≥ w
		for lo < hi {
			mid := (lo + hi) / 2
			if cum[mid] < w {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		ci := lo
		v := flat[i*dim : (i+1)*dim : (i+1)*dim]
		for j := range v {
			v[j] = float32(centers[ci][j] + r.gauss()*spread[j]*radius[ci])
		}
		out[i] = v
	}
	return out
}

// gauss is a standard normal draw (Box–Muller; one of the pair is dropped,
// which costs a little speed and keeps the generator stateless beyond s).
func (r *splitmix) gauss() float64 {
	u1, u2 := r.unit(), r.unit()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// splitmix is SplitMix64 (Steele, Lea and Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014): a tiny seeded generator
// for SyntheticVectors, since node logic may not use math/rand.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit is uniform in (0, 1]: 53 random bits, shifted off zero so that its
// logarithm is finite.
func (r *splitmix) unit() float64 {
	return float64(r.next()>>11+1) / (1 << 53)
}

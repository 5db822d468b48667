package vecidx

import "math"

// DimMax is the largest vector dimension the index accepts. Word embeddings
// in use are 50–300 dimensional; the limit keeps one vector's cost (and a
// node's scratch space) bounded.
const DimMax = 300

// dot is the similarity of two unit vectors: their dot product, which is
// their cosine. It scores every result the index reports and every vector
// of the exact scan, so it is unrolled by eight into four partial sums,
// which lets the compiler drop bounds checks and overlap the multiply-adds.
// Every score the index reports comes from this one function, so the list
// scans' rescoring, the pending scan and Exact agree bit for bit on the
// score of the same pair; and each product is rounded before it is added (the explicit
// conversions), so that no platform fuses them into multiply-adds and the
// scores are the same bits everywhere.
func dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= n; i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += float32(aa[0]*bb[0]) + float32(aa[4]*bb[4])
		s1 += float32(aa[1]*bb[1]) + float32(aa[5]*bb[5])
		s2 += float32(aa[2]*bb[2]) + float32(aa[6]*bb[6])
		s3 += float32(aa[3]*bb[3]) + float32(aa[7]*bb[7])
	}
	for ; i < n; i++ {
		s0 += float32(a[i] * b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// unitCopy returns v scaled to length one in a new slice, or an error when v
// has the wrong dimension, a NaN or infinite component, or no length. The
// norm is summed in float64 so that vectors with tiny or huge components
// (within float32's range) still normalise without underflow or overflow.
func unitCopy(v []float32, dim int) ([]float32, error) {
	if len(v) != dim {
		return nil, errDim(len(v), dim)
	}
	return normalise(make([]float32, dim), v)
}

// normalise is unitCopy into u, which may be v itself.
func normalise(u, v []float32) ([]float32, error) {
	var ss float64
	for _, f := range v {
		d := float64(f)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return nil, ErrNotFinite
		}
		ss += d * d
	}
	if ss == 0 {
		return nil, ErrZero
	}
	inv := 1 / math.Sqrt(ss)
	u = u[:len(v)]
	for i, f := range v {
		u[i] = float32(float64(f) * inv)
	}
	// A non-zero vector whose components are all subnormal can still round
	// to zero after scaling only if the norm overflowed, which float64
	// excludes; assert rather than store a vector that is not unit length.
	if n := dot(u, u); !(n > 0.99 && n < 1.01) {
		panic("vecidx: normalised vector is not unit length")
	}
	return u, nil
}

package vecidx

import "math"

// A code is a unit vector quantised to 8-bit integers for the comparisons
// with centroids (partition.go, trainer.go): every Put compares its vector
// with each of some √n centroids, and each round of k-means does so for
// every sample vector, so the cost of one similarity sets the cost of both.
// (The lists hold the coarser nibble codes of nibble.go, which a search
// scans by the tens of thousands; centroids are few, and rank lists best
// with the finer codes.)
//
// Each component is rounded to an integer in -L..L after scaling by
// s = max|v[i]|/L, and three such integers share one uint64, codeShift
// bits apart: w = q0 + q1·2^21 + q2·2^42 (two's complement). The other
// side of a product is packed in reverse order, r = p2 + p1·2^21 + p0·2^42,
// so that the coefficient of 2^42 in w·r is q0·p0 + q1·p1 + q2·p2: one
// 64-bit multiply does three multiply-adds. The products of all of a
// code's words are summed before that field is read out (codeDot), which
// bounds L by the dimension (codeLevels): 101 at 100 dimensions, 127 at
// most, 59 at DimMax. At 100 dimensions a code is 34 words (272 bytes, 400
// for float32) and a similarity costs less than half the time of a float32
// dot product; being integer arithmetic, it is the same on every platform.
//
// The similarity of two codes is s_a·s_b·Σq·p. Rounding moves each
// component by at most s/2; for unit vectors of 100 dimensions, whose
// largest components are near 0.3, a similarity is off by about 0.001
// (s ≈ 0.003, and the errors of a hundred components mostly cancel), which
// is plenty for choosing a vector's nearest centroid.
const (
	codeShift     = 21 // bits per field, three fields per word
	codeMask      = 1<<codeShift - 1
	codeLevelsMax = 127 // components in -127..127 at most: 8 bits with the sign
)

// codeWords is the length of a code of dim components.
func codeWords(dim int) int { return (dim + 2) / 3 }

// codeLevels is the L of codes of dim components: the largest L ≤
// codeLevelsMax for which a whole code's products fit one 64-bit sum. The
// middle coefficient, at most words·3·L², must fit the field's 21 bits
// with the sign (< 2^20); the coefficients below it, at most
// words·L²·(1 + 2·2^21) < 2^41 when the first bound holds, then round away
// when the field is read with a half (2^41) added; those above it only
// touch bits 63 and up.
func codeLevels(dim int) int {
	w := codeWords(dim)
	l := int(math.Sqrt(float64(1<<20-1) / float64(3*w)))
	for 3*w*l*l >= 1<<20 { // guard the float square root
		l--
	}
	return min(l, codeLevelsMax)
}

// encode writes the forward code of v (codeWords(len(v)) words, levels
// codeLevels(len(v))) into dst and returns its scale. v must have a
// non-zero, finite component.
func encode(dst []uint64, v []float32, levels int) float32 {
	big := float32(0)
	for _, f := range v {
		big = max(big, float32(math.Abs(float64(f))))
	}
	if !(big > 0) || math.IsInf(float64(big), 0) {
		panic("vecidx: encode of a zero or infinite vector")
	}
	s := big / float32(levels)
	inv := 1 / float64(s)
	for g := range dst {
		var w int64
		for t := range 3 {
			if j := 3*g + t; j < len(v) {
				w += roundLevel(v[j], inv, int64(levels)) << (codeShift * t)
			}
		}
		dst[g] = uint64(w)
	}
	return s
}

// roundLevel is f/s rounded to the nearest integer (halves to even),
// given inv = 1/s; it must lie in -levels..levels. Every code is quantised
// by it, so it is branch-free: adding 1.5·2^52 to a float64 of magnitude
// below 2^51 leaves the integer nearest to it in the low bits of the sum
// (the addition rounds, to even), which subtracting the constant's bits
// reads out. math.Round of a quotient cost a division and a dozen
// operations a component, and a truncation and a test of the fraction
// mispredicted a branch every other component; quantising was some 2% of
// a loaded server's CPU. (f·inv may differ from f/s in the last bit, which
// moves a component that lies within a rounding error of a half to the
// other integer: a code is an estimate either way, the same on every
// platform.)
func roundLevel(f float32, inv float64, levels int64) int64 {
	const magic = 1.5 * (1 << 52)
	q := int64(math.Float64bits(float64(f)*inv+magic) - math.Float64bits(magic))
	if q < -levels || q > levels {
		panic("vecidx: code component out of range")
	}
	return q
}

// reverse writes into dst the reversed packing of the forward code src,
// the form the other side of codeDot takes. dst may be src.
func reverse(dst, src []uint64) {
	dst = dst[:len(src)]
	for g, w := range src {
		x := int64(w)
		q0 := field(uint64(x))
		x = (x - int64(q0)) >> codeShift
		q1 := field(uint64(x))
		q2 := (x - int64(q1)) >> codeShift
		dst[g] = uint64(q2 + int64(q1)<<codeShift + int64(q0)<<(2*codeShift))
	}
}

// field is the signed integer in the low codeShift bits of x.
func field(x uint64) int32 {
	return int32(uint32(x&codeMask)<<(32-codeShift)) >> (32 - codeShift)
}

// codeDot is Σ q[i]·p[i] for the forward code a and the reversed code b.
func codeDot(a, b []uint64) int32 {
	b = b[:len(a)]
	// Four sums keep four multiplies in flight.
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		aa, bb := a[i:i+4:i+4], b[i:i+4:i+4]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	s := (s0 + s1) + (s2 + s3)
	return field((s + 1<<(2*codeShift-1)) >> (2 * codeShift))
}

// codeSim is the similarity of two codes from their integer dot product
// and scales. The conversions round each step, so no platform fuses them.
func codeSim(sa, sb float32, d int32) float32 {
	return float32(sa*sb) * float32(d)
}

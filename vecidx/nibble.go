package vecidx

import "math"

// A nibble code is what a graph node holds of its vector (hnsw.go): every
// component rounded to an integer q in -7..7 after scaling by s =
// max|v[i]|/7, and stored as q+8 in four bits, sixteen to a 64-bit word.
// At 100 dimensions it is 7 words, and with its scale a node's code is 8
// words, one 64-byte cache line, against 400 bytes of float32 (or 280 of
// the 8-bit codes the graph used before): a graph search reads a node's
// code for every similarity it computes, from anywhere in the graph, so
// the bytes a code takes set most of a search's time once the graph is
// larger than the cache, and a similarity computed from one line costs
// less than from five.
//
// The similarity with a query is computed four components to a multiply.
// Component 16w+k of the code is nibble k of word w, so masking the word
// with nibbleLanes after shifting it right by 4g (g = 0..3) leaves
// components 16w+g, 16w+4+g, 16w+8+g and 16w+12+g in four 16-bit fields,
// each 0..15. The query is rounded to integers b in -63..63 and packed the
// other way round per word and shift (nibbleQuery): b[16w+12+g] +
// b[16w+8+g]·2^16 + b[16w+4+g]·2^32 + b[16w+g]·2^48, so that in the
// product of the two words the coefficient of 2^48 is the four
// components' Σ (q+8)·b. The products of two code words (eight) are
// summed, then that coefficient is read out: at most 32·15·63 = 30,240 in
// size, it fits its 16 bits with the sign, and the coefficients below it
// (at most 8·3·15·63 = 22,680 at 2^32, less below) sum to less than 2^47,
// so adding 2^47 before the shift rounds them away; those above it are
// beyond bit 63. Subtracting 8·Σb takes the offset back out. That is
// about 20 operations and 4 multiplies per 16 components, exact integer
// arithmetic and the same on every platform.
//
// A query is either a vector (a search's, rounded to -63..63) or another
// node's code (setCode: its integers -7..7 as they are), which is how the
// graph compares two nodes; then the integer dot product Σ q_a·q_b and the
// similarity s_a·s_b·Σ q_a·q_b are the same whichever node is the query.
//
// The estimate is off by about 0.01 for unit vectors of 100 dimensions (a
// nibble moves a component by up to s/2 ≈ 0.02): too coarse to rank the
// nearest ten, fine for walking a graph towards them. The Index scores the
// best few dozen a search finds again with the float32 vectors.
const (
	nibbleLevels = 7
	nibbleOffset = 8
	nibbleLanes  = 0x000F_000F_000F_000F
	// queryLevels bounds the query's integers so that the sum of two
	// words fits its 16-bit field (see above).
	queryLevels = 63
)

// nibbleWords is the length in words of the nibble code of dim components.
func nibbleWords(dim int) int { return (dim + 15) / 16 }

// encodeNibbles writes the nibble code of v (a vector with a non-zero,
// finite component) into dst, nibbleWords(len(v)) words, and returns its
// scale.
func encodeNibbles(dst []uint64, v []float32) float32 {
	big := maxAbs(v)
	if !(big > 0) || math.IsInf(float64(big), 0) {
		panic("vecidx: nibble code of a zero or infinite vector")
	}
	s := big / nibbleLevels
	inv := 1 / float64(s)
	dst = dst[:nibbleWords(len(v))]
	clear(dst)
	for i, f := range v {
		q := roundLevel(f, inv, nibbleLevels) + nibbleOffset
		dst[i/16] |= uint64(q) << (4 * (i % 16))
	}
	return s
}

// maxAbs is the largest |v[i]|.
func maxAbs(v []float32) float32 {
	big := float32(0)
	for _, f := range v {
		big = max(big, float32(math.Abs(float64(f))))
	}
	return big
}

// nibbleQuery is a query packed for dot: per code word and shift g its
// reversed word (see the top of this file), and 8·Σb.
type nibbleQuery struct {
	rev    []uint64 // 4 per code word
	offset int32    // nibbleOffset·Σ b
	scale  float32  // component i ≈ scale·b[i]
}

// set packs the unit vector v.
func (q *nibbleQuery) set(v []float32) {
	words := nibbleWords(len(v))
	if cap(q.rev) < 4*words {
		q.rev = make([]uint64, 4*words)
	}
	q.rev = q.rev[:4*words]
	clear(q.rev)
	q.scale = maxAbs(v) / queryLevels
	inv := 1 / float64(q.scale)
	sum := int64(0)
	for i, f := range v {
		b := roundLevel(f, inv, queryLevels)
		sum += b
		w, k := i/16, i%16
		g, lane := k%4, k/4
		q.rev[4*w+g] += uint64(b << (16 * (3 - lane)))
	}
	q.offset = int32(nibbleOffset * sum)
}

// dot is Σ q[i]·b[i] of a nibble code and the query.
func (q *nibbleQuery) dot(code []uint64) int32 {
	rev := q.rev[:4*len(code)]
	s := int32(0)
	w := 0
	for ; w+2 <= len(code); w += 2 {
		x, y := code[w], code[w+1]
		r := rev[4*w : 4*w+8 : 4*w+8]
		p := (x&nibbleLanes)*r[0] + (x>>4&nibbleLanes)*r[1] + (x>>8&nibbleLanes)*r[2] + (x>>12&nibbleLanes)*r[3] +
			(y&nibbleLanes)*r[4] + (y>>4&nibbleLanes)*r[5] + (y>>8&nibbleLanes)*r[6] + (y>>12&nibbleLanes)*r[7]
		s += int32(int64(p+1<<47) >> 48)
	}
	if w < len(code) {
		x := code[w]
		r := rev[4*w : 4*w+4 : 4*w+4]
		p := (x&nibbleLanes)*r[0] + (x>>4&nibbleLanes)*r[1] + (x>>8&nibbleLanes)*r[2] + (x>>12&nibbleLanes)*r[3]
		s += int32(int64(p+1<<47) >> 48)
	}
	return s - q.offset
}

// setCode packs a nibble code of dim components with scale s as the
// query: its integers stay as they are (-7..7, within the query's bound),
// so that the similarity of two codes is symmetric.
func (q *nibbleQuery) setCode(code []uint64, s float32, dim int) {
	words := nibbleWords(dim)
	if cap(q.rev) < 4*words {
		q.rev = make([]uint64, 4*words)
	}
	q.rev = q.rev[:4*words]
	clear(q.rev)
	q.scale = s
	sum := int64(0)
	for i := range dim {
		w, k := i/16, i%16
		b := int64(code[w]>>(4*k)&15) - nibbleOffset
		sum += b
		g, lane := k%4, k/4
		q.rev[4*w+g] += uint64(b << (16 * (3 - lane)))
	}
	q.offset = int32(nibbleOffset * sum)
}

// codeSim is a similarity from an integer dot product and the two scales.
// The conversions round each step, so no platform fuses them.
func codeSim(sa, sb float32, d int32) float32 {
	return float32(sa*sb) * float32(d)
}

// roundLevel is f/s rounded to the nearest integer (halves to even),
// given inv = 1/s; it must lie in -levels..levels. Every code is quantised
// by it, so it is branch-free: adding 1.5·2^52 to a float64 of magnitude
// below 2^51 leaves the integer nearest to it in the low bits of the sum
// (the addition rounds, to even), which subtracting the constant's bits
// reads out. math.Round of a quotient cost a division and a dozen
// operations a component, and a truncation and a test of the fraction
// mispredicted a branch every other component. (f·inv may differ from f/s
// in the last bit, which moves a component that lies within a rounding
// error of a half to the other integer: a code is an estimate either way,
// the same on every platform.)
func roundLevel(f float32, inv float64, levels int64) int64 {
	const magic = 1.5 * (1 << 52)
	q := int64(math.Float64bits(float64(f)*inv+magic) - math.Float64bits(magic))
	if q < -levels || q > levels {
		panic("vecidx: code component out of range")
	}
	return q
}

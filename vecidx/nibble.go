package vecidx

import "math"

// A nibble code is what a list holds of each vector (partition.go): every
// component rounded to an integer q in -7..7 after scaling by s =
// max|v[i]|/7, and stored as q+8 in four bits, sixteen to a 64-bit word.
// At 100 dimensions it is 7 words (56 bytes) and a scale, against 400
// bytes of float32, so the lists a search scans stream a seventh of the
// memory, and at 100k vectors memory, not arithmetic, is what a scan of
// tens of thousands of vectors waits for.
//
// The similarity with a query is computed four components to a multiply,
// like the 8-bit codes (code.go) but with 16-bit fields. Component 16w+k
// of the code is nibble k of word w, so masking the word with
// nibbleLanes after shifting it right by 4g (g = 0..3) leaves components
// 16w+g, 16w+4+g, 16w+8+g and 16w+12+g in four 16-bit fields, each
// 0..15. The query is rounded to integers b in -63..63 and packed the
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
// The estimate s_q·s_v·Σ q·b is off by about 0.01 for unit vectors of 100
// dimensions (a nibble moves a component by up to s/2 ≈ 0.02), too coarse
// to rank the nearest ten but fine for choosing them: a search keeps the
// best few dozen by the estimate and scores those again exactly with the
// float32 vectors. On cmd/bench's value vectors the true top 10 were among
// the best 50 by nibble estimate in 99.95% of cases (the best 30: 99.85%); crowded vectors need more (see rerankPerK).
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

// nibbleQuery is a query packed for nibbleDot: per code word and shift g
// its reversed word (see the top of this file), and 8·Σb.
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

// encodeBoth writes v's forward 8-bit code (levels levels, as encode) into
// fwd and its nibble code (as encodeNibbles) into nib, in one pass over v,
// and returns their scales: what a Put needs, the one to find its list and
// the other to go in it.
func encodeBoth(fwd, nib []uint64, v []float32, levels int) (s8, s4 float32) {
	big := maxAbs(v)
	if !(big > 0) || math.IsInf(float64(big), 0) {
		panic("vecidx: code of a zero or infinite vector")
	}
	s8, s4 = big/float32(levels), big/nibbleLevels
	inv8, inv4 := 1/float64(s8), 1/float64(s4)
	fwd = fwd[:codeWords(len(v))]
	nib = nib[:nibbleWords(len(v))]
	for g := range fwd {
		var w int64
		for t, f := range v[3*g : min(3*g+3, len(v))] {
			w += roundLevel(f, inv8, int64(levels)) << (codeShift * t)
		}
		fwd[g] = uint64(w)
	}
	for g := range nib {
		var w uint64
		for k, f := range v[16*g : min(16*g+16, len(v))] {
			w |= uint64(roundLevel(f, inv4, nibbleLevels)+nibbleOffset) << (4 * k)
		}
		nib[g] = w
	}
	return s8, s4
}

package vecidx

import (
	"math"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestNibbleDotMatchesInts: the packed dot product of a nibble code and a
// query is the exact integer dot product of the two quantised vectors,
// whatever the dimension and however large the products (the shapes of
// unitGen include vectors whose components are all ±max).
func TestNibbleDotMatchesInts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dim := rapid.OneOf(rapid.IntRange(1, 40), rapid.IntRange(1, DimMax), rapid.Just(DimMax)).Draw(t, "dim")
		v := unitGen(dim).Draw(t, "v")
		q := unitGen(dim).Draw(t, "q")
		code := make([]uint64, nibbleWords(dim))
		s := encodeNibbles(code, v)
		if want := maxAbs(v) / nibbleLevels; s != want {
			t.Fatalf("scale %v, want %v", s, want)
		}
		var nq nibbleQuery
		nq.set(q)
		want := int64(0)
		for i := range dim {
			c := int64(code[i/16]>>(4*(i%16))) & 15
			if c < nibbleOffset-nibbleLevels || c > nibbleOffset+nibbleLevels {
				t.Fatalf("component %d stored as %d", i, c)
			}
			if got, w := c-nibbleOffset, roundCode(float64(v[i])*(1/float64(s))); got != w {
				t.Fatalf("component %d: %d, want %d", i, got, w)
			}
			b := roundCode(float64(q[i]) * (1 / float64(nq.scale)))
			want += (c - nibbleOffset) * b
		}
		// Nibbles past the dimension are zero.
		if dim%16 != 0 && code[len(code)-1]>>(4*(dim%16)) != 0 {
			t.Fatalf("padding nibbles set: %x", code[len(code)-1])
		}
		if got := nq.dot(code); int64(got) != want {
			t.Fatalf("dot %d, want %d", got, want)
		}
	})
}

// TestNibbleEstimate: for unit vectors of 100 dimensions the estimate is
// within a few hundredths of the true similarity.
func TestNibbleEstimate(t *testing.T) {
	vecs := SyntheticVectors(3, 400, 100)
	units := make([][]float32, len(vecs))
	for i, v := range vecs {
		units[i], _ = unitCopy(v, 100)
	}
	code := make([]uint64, nibbleWords(100))
	var q nibbleQuery
	worst := 0.0
	for i := 0; i+1 < len(units); i += 2 {
		s := encodeNibbles(code, units[i])
		q.set(units[i+1])
		est := codeSim(q.scale, s, q.dot(code))
		worst = max(worst, math.Abs(float64(est-dot(units[i], units[i+1]))))
	}
	if worst > 0.05 {
		t.Fatalf("estimate off by %.4f", worst)
	}
}

func BenchmarkNibbleDot100(b *testing.B) {
	vs := SyntheticVectors(1, 2, 100)
	u0, _ := unitCopy(vs[0], 100)
	u1, _ := unitCopy(vs[1], 100)
	var q nibbleQuery
	q.set(u0)
	code := make([]uint64, nibbleWords(100))
	encodeNibbles(code, u1)
	var s int32
	for b.Loop() {
		s += q.dot(code)
	}
	_ = s
}

// TestEncodeBoth: the two codes of one pass are those of encode and
// encodeNibbles.
func TestEncodeBoth(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dim := rapid.IntRange(1, DimMax).Draw(t, "dim")
		v := unitGen(dim).Draw(t, "v")
		levels := codeLevels(dim)
		fwd, nib := make([]uint64, codeWords(dim)), make([]uint64, nibbleWords(dim))
		s8, s4 := encodeBoth(fwd, nib, v, levels)
		fwd2, nib2 := make([]uint64, codeWords(dim)), make([]uint64, nibbleWords(dim))
		w8, w4 := encode(fwd2, v, levels), encodeNibbles(nib2, v)
		if s8 != w8 || s4 != w4 || !slices.Equal(fwd, fwd2) || !slices.Equal(nib, nib2) {
			t.Fatalf("encodeBoth: %v %v %x %x, want %v %v %x %x", s8, s4, fwd, nib, w8, w4, fwd2, nib2)
		}
	})
}

func BenchmarkEncodeBoth100(b *testing.B) {
	vs := SyntheticVectors(1, 1, 100)
	u, _ := unitCopy(vs[0], 100)
	fwd, nib := make([]uint64, codeWords(100)), make([]uint64, nibbleWords(100))
	for b.Loop() {
		encodeBoth(fwd, nib, u, codeLevels(100))
	}
}

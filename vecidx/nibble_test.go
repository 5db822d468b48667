package vecidx

import (
	"math"
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

// unitGen draws unit vectors of dimension dim of several shapes: spread
// out, one-hot, crowded towards one direction, and with all components of
// the same size (the largest products a code can hold).
func unitGen(dim int) *rapid.Generator[[]float32] {
	return rapid.Custom(func(t *rapid.T) []float32 {
		v := make([]float32, dim)
		switch rapid.IntRange(0, 3).Draw(t, "shape") {
		case 0:
			for i := range v {
				v[i] = float32(rapid.Float64Range(-1, 1).Draw(t, "x"))
			}
		case 1:
			v[rapid.IntRange(0, dim-1).Draw(t, "axis")] = 1
		case 2:
			for i := range v {
				v[i] = 1 + float32(rapid.Float64Range(-0.05, 0.05).Draw(t, "x"))
			}
		case 3:
			for i := range v {
				v[i] = 1
				if rapid.Bool().Draw(t, "neg") {
					v[i] = -1
				}
			}
		}
		u, err := unitCopy(v, dim)
		if err != nil {
			v[0] = 1
			u, _ = unitCopy(v, dim)
		}
		return u
	})
}

// roundCode is x rounded to the nearest integer as codes round it:
// halves to even.
func roundCode(x float64) int64 { return int64(math.RoundToEven(x)) }

// TestRoundLevel: roundLevel rounds as math.RoundToEven does, halves
// included.
func TestRoundLevel(t *testing.T) {
	for _, x := range []float64{0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 126.5, -126.5, 127, -127, 3.2, -3.7} {
		if got, want := roundLevel(float32(x), 1, 127), int64(math.RoundToEven(float64(float32(x)))); got != want {
			t.Errorf("roundLevel(%v) = %d, want %d", x, got, want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		f := float32(rapid.Float64Range(-1, 1).Draw(t, "f"))
		inv := rapid.Float64Range(1, 1000).Draw(t, "inv")
		if x := float64(f) * inv; math.Abs(x) <= 127 {
			if got, want := roundLevel(f, inv, 127), int64(math.RoundToEven(x)); got != want {
				t.Fatalf("roundLevel(%v, %v) = %d, want %d", f, inv, got, want)
			}
		}
	})
}

package vecidx

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

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

// ints is the brute-force quantisation encode promises: each component
// rounded to a multiple of the scale.
func ints(v []float32, levels int) ([]int64, float32) {
	big := float32(0)
	for _, f := range v {
		big = max(big, float32(math.Abs(float64(f))))
	}
	s := big / float32(levels)
	q := make([]int64, len(v))
	for i, f := range v {
		q[i] = roundCode(float64(f) * (1 / float64(s)))
	}
	return q, s
}

// TestCodeDotMatchesInts: codeDot of a forward and a reversed code is the
// exact integer dot product of the two quantised vectors, whatever the
// dimension and however large the products (all components ±L at DimMax
// is the bound codeLevels is chosen for), and it is symmetric.
func TestCodeDotMatchesInts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dim := rapid.OneOf(rapid.IntRange(1, 12), rapid.IntRange(1, DimMax), rapid.Just(DimMax)).Draw(t, "dim")
		a, b := unitGen(dim).Draw(t, "a"), unitGen(dim).Draw(t, "b")
		levels := codeLevels(dim)
		w := codeWords(dim)
		ca, cb := make([]uint64, w), make([]uint64, w)
		sa, sb := encode(ca, a, levels), encode(cb, b, levels)
		qa, wantSA := ints(a, levels)
		qb, wantSB := ints(b, levels)
		if sa != wantSA || sb != wantSB {
			t.Fatalf("scales %v %v, want %v %v", sa, sb, wantSA, wantSB)
		}
		var want int64
		for i := range qa {
			if qa[i] < int64(-levels) || qa[i] > int64(levels) {
				t.Fatalf("component %d quantised to %d, outside ±%d", i, qa[i], levels)
			}
			want += qa[i] * qb[i]
		}
		rb, ra := make([]uint64, w), make([]uint64, w)
		reverse(rb, cb)
		reverse(ra, ca)
		if got := codeDot(ca, rb); int64(got) != want {
			t.Fatalf("dim %d: codeDot %d, want %d", dim, got, want)
		}
		if got := codeDot(cb, ra); int64(got) != want {
			t.Fatalf("dim %d: codeDot the other way round %d, want %d", dim, got, want)
		}
		// Reversing twice gives the forward code back.
		reverse(ra, ra)
		for i := range ra {
			if ra[i] != ca[i] {
				t.Fatalf("word %d: reversed twice %x, forward %x", i, ra[i], ca[i])
			}
		}
	})
}

// TestCodeSimError: a code similarity is within the rounding bound of the
// float32 dot product. Each component moves by at most s/2, so
// |Σ(a+e)(b+f) − Σab| ≤ (s_a·Σ|b| + s_b·Σ|a|)/2 + dim·s_a·s_b/4.
func TestCodeSimError(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dim := rapid.IntRange(1, DimMax).Draw(t, "dim")
		a, b := unitGen(dim).Draw(t, "a"), unitGen(dim).Draw(t, "b")
		levels := codeLevels(dim)
		w := codeWords(dim)
		ca, cb := make([]uint64, w), make([]uint64, w)
		sa, sb := encode(ca, a, levels), encode(cb, b, levels)
		reverse(cb, cb)
		got := float64(codeSim(sa, sb, codeDot(ca, cb)))
		var l1a, l1b float64
		for i := range a {
			l1a += math.Abs(float64(a[i]))
			l1b += math.Abs(float64(b[i]))
		}
		bound := (float64(sa)*l1b+float64(sb)*l1a)/2 + float64(dim)*float64(sa)*float64(sb)/4 + 1e-5
		if d := math.Abs(got - float64(dot(a, b))); d > bound {
			t.Fatalf("dim %d: code similarity %v, dot %v: off by %v, bound %v", dim, got, dot(a, b), d, bound)
		}
	})
}

// TestCodeLevels: every dimension gets the most levels that keep a whole
// code's sum inside the field, and at 100 dimensions (the default model)
// that is 101.
func TestCodeLevels(t *testing.T) {
	for dim := 1; dim <= DimMax; dim++ {
		l, w := codeLevels(dim), codeWords(dim)
		if l < 2 || l > codeLevelsMax || 3*w*l*l >= 1<<20 {
			t.Fatalf("dim %d: %d levels", dim, l)
		}
		if l < codeLevelsMax && 3*w*(l+1)*(l+1) < 1<<20 {
			t.Fatalf("dim %d: %d levels, %d would fit", dim, l, l+1)
		}
	}
	if l := codeLevels(100); l != 101 {
		t.Fatalf("100 dimensions: %d levels", l)
	}
}

func BenchmarkCodeDot100(b *testing.B) {
	vs := SyntheticVectors(1, 2, 100)
	w := codeWords(100)
	a, c := make([]uint64, w), make([]uint64, w)
	encode(a, vs[0], codeLevels(100))
	encode(c, vs[1], codeLevels(100))
	reverse(c, c)
	var sink int32
	for b.Loop() {
		sink += codeDot(a, c)
	}
	_ = sink
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

package vecidx

import (
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// TestDot compares the unrolled dot product with a plain float64 sum for
// every length around the unroll width.
func TestDot(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(t, "n")
		comp := rapid.Float32Range(-10, 10)
		a := rapid.SliceOfN(comp, n, n).Draw(t, "a")
		b := rapid.SliceOfN(comp, n, n).Draw(t, "b")
		var want, mag float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
			mag += math.Abs(float64(a[i]) * float64(b[i]))
		}
		got := float64(dot(a, b))
		// float32 sums of n terms: error within a few ulps of the
		// magnitude per term.
		if math.Abs(got-want) > 1e-6*mag*float64(n+1)+1e-30 {
			t.Fatalf("dot = %v, float64 sum %v", got, want)
		}
		if dot(a, b) != dot(b, a) {
			t.Fatalf("dot is not symmetric")
		}
	})
}

func TestUnitCopy(t *testing.T) {
	tests := []struct {
		name string
		v    []float32
		dim  int
		err  error
	}{
		{"unit", []float32{1, 0, 0}, 3, nil},
		{"scaled", []float32{3, 4}, 2, nil},
		{"tiny", []float32{1e-44, 1e-44}, 2, nil},
		{"huge", []float32{math.MaxFloat32, math.MaxFloat32}, 2, nil},
		{"negative", []float32{-1, -1, -1, -1}, 4, nil},
		{"short", []float32{1}, 2, ErrDim},
		{"long", []float32{1, 2, 3}, 2, ErrDim},
		{"zero", []float32{0, 0}, 2, ErrZero},
		{"negative zero", []float32{float32(math.Copysign(0, -1)), 0}, 2, ErrZero},
		{"NaN", []float32{float32(math.NaN()), 1}, 2, ErrNotFinite},
		{"+Inf", []float32{float32(math.Inf(1)), 1}, 2, ErrNotFinite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := unitCopy(tc.v, tc.dim)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if n := dot(u, u); math.Abs(float64(n)-1) > 1e-6 {
				t.Fatalf("|u|² = %v", n)
			}
			if &u[0] == &tc.v[0] {
				t.Fatal("unitCopy did not copy")
			}
			for i := range u { // same direction: every component keeps its sign
				if (u[i] > 0) != (tc.v[i] > 0) {
					t.Fatalf("component %d: %v from %v", i, u[i], tc.v[i])
				}
			}
		})
	}
}

func BenchmarkDot100(b *testing.B) {
	x, y := make([]float32, 100), make([]float32, 100)
	for i := range x {
		x[i], y[i] = float32(i), float32(100-i)
	}
	var s float32
	for b.Loop() {
		s += dot(x, y)
	}
	_ = s
}

package main

import (
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestRetrofitFixedPoint: after enough rounds every vector satisfies the
// update's fixed-point equation q_i = (α q̂_i + Σ_j β_ij q_j)/(α + 1), a
// word without edges keeps its vector, and the input is not modified.
func TestRetrofitFixedPoint(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 8).Draw(t, "n")
		dim := rapid.IntRange(1, 4).Draw(t, "dim")
		orig := make([][]float64, n)
		for i := range orig {
			orig[i] = make([]float64, dim)
			for d := range orig[i] {
				orig[i][d] = rapid.Float64Range(-1, 1).Draw(t, "x")
			}
		}
		keep := make([][]float64, n)
		for i := range orig {
			keep[i] = append([]float64(nil), orig[i]...)
		}
		var edges []edge
		for a := range n {
			for b := a + 1; b < n; b++ {
				if rapid.IntRange(0, 2).Draw(t, "edge") == 0 {
					edges = append(edges, edge{int32(a), int32(b), rapid.SampledFrom([]float64{weightSynonym, weightHypernym}).Draw(t, "w")})
				}
			}
		}
		got := retrofit(orig, edges, 200, 1)
		for i := range orig {
			for d := range orig[i] {
				if orig[i][d] != keep[i][d] {
					t.Fatal("retrofit changed its input")
				}
			}
		}
		wsum := make([]float64, n)
		for _, e := range edges {
			wsum[e.a] += e.w
			wsum[e.b] += e.w
		}
		for i := range n {
			for d := range dim {
				want := orig[i][d]
				if wsum[i] > 0 {
					s := orig[i][d]
					for _, e := range edges {
						switch int32(i) {
						case e.a:
							s += e.w / wsum[i] * got[e.b][d]
						case e.b:
							s += e.w / wsum[i] * got[e.a][d]
						}
					}
					want = s / 2
				}
				if math.Abs(got[i][d]-want) > 1e-9 {
					t.Fatalf("word %d dim %d: %v, fixed point %v (edges %v)", i, d, got[i][d], want, edges)
				}
			}
		}
	})
}

// TestRetrofitMovesSynonymsTogether: two orthogonal synonyms end nearer:
// the fixed point of q0 = (q̂0+q1)/2, q1 = (q̂1+q0)/2 is q0 = (2q̂0+q̂1)/3,
// q1 = (q̂0+2q̂1)/3, at cosine 4/5.
func TestRetrofitMovesSynonymsTogether(t *testing.T) {
	orig := [][]float64{{1, 0}, {0, 1}, {-1, 0}}
	got := retrofit(orig, []edge{{0, 1, weightSynonym}}, 10, 1)
	cos := func(a, b []float64) float64 {
		return (a[0]*b[0] + a[1]*b[1]) / math.Hypot(a[0], a[1]) / math.Hypot(b[0], b[1])
	}
	if c := cos(got[0], got[1]); math.Abs(c-0.8) > 1e-3 {
		t.Fatalf("synonyms' cosine %v after retrofitting, want 0.8", c)
	}
	if got[2][0] != -1 || got[2][1] != 0 {
		t.Fatalf("a word without edges moved: %v", got[2])
	}
}

func TestVocabWord(t *testing.T) {
	cases := map[string]bool{
		"the": true, "don't": true, "state-owned": true, "café": true, "1990s": true,
		",": false, "1990": false, "3.14": false, "'s": false, "n't": true, "a b": false,
		"-": false, "x--y": false, strings.Repeat("a", 65): false,
	}
	for w, want := range cases {
		if got := vocabWord(w); got != want {
			t.Errorf("vocabWord(%q) = %v, want %v", w, got, want)
		}
	}
}

func TestReadWink(t *testing.T) {
	in := `{"precision":8,"l2NormIndex":2,"wordIndex":3,"size":3,"dimensions":2,
		"words":["the",",","cat"],
		"vectors":{"the":[3,4,5,0],",":[1,0,1,1],"cat":[0,-2,2,2]},"unkVector":[0,0,-1]}`
	s, err := readWink(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.words, " ") != "the , cat" {
		t.Fatalf("words %v", s.words)
	}
	if math.Abs(s.vecs[0][0]-0.6) > 1e-9 || math.Abs(s.vecs[2][1]+1) > 1e-9 {
		t.Fatalf("vectors %v", s.vecs)
	}
	if keep := selectVocab(s, 5); len(keep) != 2 || keep[1] != 2 {
		t.Fatalf("selectVocab %v, want [0 2]", keep)
	}
	for _, bad := range []string{
		`{"size":2,"dimensions":2,"words":["a"],"vectors":{"a":[1,2]}}`,
		`{"size":1,"dimensions":2,"words":["a"],"vectors":{"a":[1]}}`,
		`{"size":1,"dimensions":2,"words":["a"],"vectors":{}}`,
		`{"size":1,`,
	} {
		if _, err := readWink(strings.NewReader(bad)); err == nil {
			t.Errorf("%s read", bad)
		}
	}
}

// TestScorePairs: on a hand-made space the figures are what they must be.
func TestScorePairs(t *testing.T) {
	// Four unit vectors in 2-D: 0 and 1 close, 2 and 3 far from both.
	v := func(deg float64) []float32 {
		r := deg * math.Pi / 180
		return []float32{float32(math.Cos(r)), float32(math.Sin(r))}
	}
	var mat []float32
	for _, d := range []float64{0, 10, 90, 180} {
		mat = append(mat, v(d)...)
	}
	s := scorePairs(mat, 2, [][2]int32{{0, 1}}, 1)
	if s.pairs != 1 || s.auc != 1 || s.mrr != 1 || s.recall1 != 1 || s.medianRank != 1 {
		t.Fatalf("close pair: %+v", s)
	}
	// 0 and 2: from 0, word 1 is nearer than 2 (rank 2); from 2, both 0
	// and 1 are at about the same angle, 1 slightly nearer (rank 2).
	s = scorePairs(mat, 2, [][2]int32{{0, 2}}, 1)
	if s.mrr != 0.5 || s.recall1 != 0 || s.recall10 != 1 || s.medianRank != 2 {
		t.Fatalf("far pair: %+v", s)
	}
}

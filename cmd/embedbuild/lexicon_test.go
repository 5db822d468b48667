package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestHeldOutSplit(t *testing.T) {
	const n = 20000
	held, again, other := 0, 0, 0
	for i := range n {
		a, b := fmt.Sprintf("w%d", i), fmt.Sprintf("v%d", i*7)
		h := heldOut(1, a, b)
		if h != heldOut(1, b, a) {
			t.Fatalf("(%s, %s) depends on the order", a, b)
		}
		if h {
			held++
		}
		if h == heldOut(1, a, b) {
			again++
		}
		if h != heldOut(2, a, b) {
			other++
		}
	}
	if frac := float64(held) / n; math.Abs(frac-heldOutPercent/100.0) > 0.01 {
		t.Errorf("held out %.3f of the pairs, want %.2f", frac, heldOutPercent/100.0)
	}
	if again != n {
		t.Errorf("the split changed between calls")
	}
	if other < n/20 {
		t.Errorf("another seed changes only %d of %d decisions", other, n)
	}
}

const tinyWordNet = `00000001 03 n 03 car 0 auto 0 automobile 0 001 @ 00000002 n 0000 | a motor vehicle
00000002 03 n 02 vehicle 0 conveyance 0 000 | a thing that carries
00000003 03 n 02 car 0 railcar 0 001 @ 00000002 n 0000 | a wheeled vehicle on rails
00000004 00 a 02 big 0 large 0 001 & 00000005 a 0000 | above average in size
00000005 00 s 02 huge 0 vast(a) 0 000 | very big
00000006 03 n 02 ice_cream 0 icecream 0 000 | frozen dessert
`

func tinyVocab(words ...string) map[string]int32 {
	v := map[string]int32{}
	for i, w := range words {
		v[w] = int32(i)
	}
	return v
}

// TestBuildLexicon: the edges of a tiny WordNet, with no pair held out
// (seed chosen by search so that none is) and then with the split applied.
func TestBuildLexicon(t *testing.T) {
	sets, err := parseDataFile(strings.NewReader(tinyWordNet))
	if err != nil {
		t.Fatal(err)
	}
	words := []string{"car", "auto", "automobile", "vehicle", "conveyance", "railcar", "big", "large", "huge", "vast", "icecream"}
	vocab := tinyVocab(words...)
	name := func(e edge) string {
		return fmt.Sprintf("%s-%s:%g", words[e.a], words[e.b], e.w)
	}
	var seed uint64
	for seed = 1; ; seed++ {
		if len(buildLexicon(sets, vocab, seed).heldOut) == 0 {
			break
		}
	}
	lx := buildLexicon(sets, vocab, seed)
	var got []string
	for _, e := range lx.edges {
		got = append(got, name(e))
	}
	want := []string{
		"car-auto:1", "car-automobile:1", "car-vehicle:0.5", "car-conveyance:0.5", "car-railcar:1",
		"auto-automobile:1", "auto-vehicle:0.5", "auto-conveyance:0.5",
		"automobile-vehicle:0.5", "automobile-conveyance:0.5",
		"vehicle-conveyance:1", "vehicle-railcar:0.5", "conveyance-railcar:0.5",
		"big-large:1", "big-huge:0.5", "big-vast:0.5", "large-huge:0.5", "large-vast:0.5", "huge-vast:1",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("edges\n got %v\nwant %v", got, want)
	}
	if lx.synPairs != 7 {
		t.Fatalf("%d synonym pairs, want 7", lx.synPairs)
	}
	// Words outside the vocabulary drop out with their edges.
	small := buildLexicon(sets, tinyVocab("car", "vehicle"), seed)
	if len(small.edges) != 1 || small.edges[0] != (edge{0, 1, weightHypernym}) {
		t.Fatalf("small vocabulary: %+v", small.edges)
	}
}

// TestLexiconHeldOutInvariants: over random synsets, the held-out pairs
// are exactly the synonym pairs heldOut picks, none of them keeps an edge,
// and every other synonym pair does.
func TestLexiconHeldOutInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nw := rapid.IntRange(2, 15).Draw(t, "words")
		var words []string
		for i := range nw {
			words = append(words, fmt.Sprintf("w%d", i))
		}
		vocab := tinyVocab(words...)
		var sets []synset
		for i := range rapid.IntRange(1, 12).Draw(t, "synsets") {
			s := synset{pos: 'n', offset: uint32(i)}
			for range rapid.IntRange(1, 4).Draw(t, "size") {
				s.words = append(s.words, rapid.SampledFrom(words).Draw(t, "w"))
			}
			if i > 0 && rapid.Bool().Draw(t, "hyper") {
				s.ptrs = append(s.ptrs, pointer{"@", 'n', uint32(rapid.IntRange(0, i-1).Draw(t, "to"))})
			}
			sets = append(sets, s)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		lx := buildLexicon(sets, vocab, seed)
		syn := map[[2]int32]bool{}
		for _, s := range sets {
			for _, a := range s.words {
				for _, b := range s.words {
					if x, y := vocab[a], vocab[b]; x < y {
						syn[[2]int32{x, y}] = true
					}
				}
			}
		}
		edges := map[[2]int32]float64{}
		for i, e := range lx.edges {
			if e.a >= e.b || (i > 0 && pairKey(lx.edges[i-1].a, lx.edges[i-1].b) >= pairKey(e.a, e.b)) {
				t.Fatalf("edges not sorted or not a<b: %v", lx.edges)
			}
			edges[[2]int32{e.a, e.b}] = e.w
		}
		nHeld := 0
		for p := range syn {
			h := heldOut(seed, words[p[0]], words[p[1]])
			_, has := edges[p]
			if h {
				nHeld++
				if has || !slices.Contains(lx.heldOut, p) {
					t.Fatalf("held-out pair %v: edge %v, listed %v", p, has, slices.Contains(lx.heldOut, p))
				}
			} else if edges[p] != weightSynonym {
				t.Fatalf("synonym pair %v has weight %v", p, edges[p])
			}
		}
		if nHeld != len(lx.heldOut) || len(syn) != lx.synPairs {
			t.Fatalf("%d held out listed, %d expected; %d synonym pairs, counted %d", len(lx.heldOut), nHeld, len(syn), lx.synPairs)
		}
	})
}

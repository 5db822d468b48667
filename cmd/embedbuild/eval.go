package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"dkv/vecidx"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// negativesPerPair: how many random vocabulary words each held-out pair's
// similarity is compared with.
const negativesPerPair = 10

// scores are the figures eval reports for one model.
type scores struct {
	pairs      int     // held-out synonym pairs with both words in the vocabulary
	auc        float64 // P(cos(a,b) > cos(a,random word)), ties count one half
	mrr        float64 // mean of 1/rank of b among a's neighbours, both directions
	recall1    float64
	recall10   float64
	medianRank int
}

func runEval(args []string) error {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	var models stringList
	fs.Var(&models, "model", "model to measure (repeatable); default vecidx/model/default.dkvemb")
	wordnet := fs.String("wordnet", "/usr/share/wordnet", "WordNet 3.0 dict directory")
	seed := fs.Uint64("seed", heldOutSeedDefault, "seed of the held-out split (the build's)")
	fs.Parse(args)
	if len(models) == 0 {
		models = stringList{"vecidx/model/default.dkvemb"}
	}
	sets, err := readWordNet(*wordnet)
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %7s %6s %6s %6s %6s %6s\n", "model", "pairs", "AUC", "MRR", "R@1", "R@10", "median")
	for _, path := range models {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		m, err := vecidx.ReadModel(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		all, strict := evaluate(m, sets, *seed)
		for _, r := range []struct {
			name string
			s    scores
		}{{path, all}, {path + " (strict)", strict}} {
			fmt.Printf("%-40s %7d %6.3f %6.3f %6.3f %6.3f %6d\n", r.name, r.s.pairs, r.s.auc, r.s.mrr, r.s.recall1, r.s.recall10, r.s.medianRank)
		}
	}
	fmt.Println("(strict: only the held-out pairs whose words share no neighbour in the build's lexicon graph)")
	return nil
}

// evaluate scores m on the synonym pairs that the build with this seed held
// out, restricted to m's vocabulary: all of them, and the strict subset of
// pairs whose two words share no neighbour in the lexicon graph the build
// used. A held-out pair whose words are both synonyms of a third word
// still had both pulled towards it; the strict subset leaves those out.
func evaluate(m *vecidx.Model, sets []synset, seed uint64) (all, strict scores) {
	n, dim := m.Len(), m.Dim()
	vocab := make(map[string]int32, n)
	mat := make([]float32, n*dim)
	for i := range n {
		w := m.Word(i)
		vocab[w] = int32(i)
		v, _ := m.Lookup(w)
		copy(mat[i*dim:], v)
	}
	lx := buildLexicon(sets, vocab, seed)
	return scorePairs(mat, dim, lx.heldOut, seed), scorePairs(mat, dim, noCommonNeighbour(lx), seed)
}

// noCommonNeighbour returns the held-out pairs whose words have no
// neighbour in common among lx's edges.
func noCommonNeighbour(lx lexicon) [][2]int32 {
	nbrs := map[int32]map[int32]bool{}
	link := func(a, b int32) {
		if nbrs[a] == nil {
			nbrs[a] = map[int32]bool{}
		}
		nbrs[a][b] = true
	}
	for _, e := range lx.edges {
		link(e.a, e.b)
		link(e.b, e.a)
	}
	var out [][2]int32
	for _, p := range lx.heldOut {
		shared := false
		for c := range nbrs[p[0]] {
			if nbrs[p[1]][c] {
				shared = true
				break
			}
		}
		if !shared {
			out = append(out, p)
		}
	}
	return out
}

func cosRow(mat []float32, dim int, a, b int32) float32 {
	x := mat[int(a)*dim : int(a+1)*dim]
	y := mat[int(b)*dim : int(b+1)*dim]
	s := float32(0)
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

// scorePairs computes the figures for pairs over the unit vectors in mat.
func scorePairs(mat []float32, dim int, pairs [][2]int32, seed uint64) scores {
	n := len(mat) / dim
	s := scores{pairs: len(pairs)}
	if len(pairs) == 0 || n < 3 {
		return s
	}
	// AUC: drawn sequentially from one seeded source, so the figure
	// does not depend on scheduling.
	rng := rand.New(rand.NewPCG(seed, 0x65766131))
	wins := 0.0
	for _, p := range pairs {
		pos := cosRow(mat, dim, p[0], p[1])
		for range negativesPerPair {
			z := int32(rng.IntN(n))
			for z == p[0] || z == p[1] {
				z = int32(rng.IntN(n))
			}
			switch neg := cosRow(mat, dim, p[0], z); {
			case pos > neg:
				wins++
			case pos == neg:
				wins += 0.5
			}
		}
	}
	s.auc = wins / float64(len(pairs)*negativesPerPair)

	// Ranks, both directions: 1 + the number of other words nearer to the
	// query than its synonym. Workers fill disjoint slots.
	ranks := make([]int, 2*len(pairs))
	var wg sync.WaitGroup
	workers := runtime.NumCPU()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(ranks); k += workers {
				p := pairs[k/2]
				q, t := p[0], p[1]
				if k%2 == 1 {
					q, t = t, q
				}
				target := cosRow(mat, dim, q, t)
				r := 1
				for z := range int32(n) {
					if z != q && z != t && cosRow(mat, dim, q, z) > target {
						r++
					}
				}
				ranks[k] = r
			}
		}()
	}
	wg.Wait()
	for _, r := range ranks {
		s.mrr += 1 / float64(r)
		if r == 1 {
			s.recall1++
		}
		if r <= 10 {
			s.recall10++
		}
	}
	k := float64(len(ranks))
	s.mrr /= k
	s.recall1 /= k
	s.recall10 /= k
	sort.Ints(ranks)
	s.medianRank = ranks[len(ranks)/2]
	return s
}

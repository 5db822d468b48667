package main

import (
	"encoding/binary"
	"hash/fnv"
	"sort"
)

// Edge weights of the lexicon graph. A synonym (same synset) is the
// relation retrofitting was made for; a hypernym or an adjective's
// "similar to" is a looser likeness, so it pulls half as hard.
const (
	weightSynonym  = 1.0
	weightHypernym = 0.5
	weightSimilar  = 0.5
	// heldOutPercent of the synonym pairs are kept out of the build and
	// used only by eval.
	heldOutPercent = 10
	// heldOutSeedDefault is the seed of the split; build and eval must use
	// the same one.
	heldOutSeedDefault = 1
)

// edge joins vocabulary words a < b with weight w.
type edge struct {
	a, b int32
	w    float64
}

// lexicon is the part of WordNet that the vocabulary covers.
type lexicon struct {
	edges    []edge     // sorted by (a, b); no held-out pair among them
	heldOut  [][2]int32 // held-out synonym pairs (a < b), sorted
	synPairs int        // synonym pairs within the vocabulary, held out or not
}

// heldOut reports whether the synonym pair {a, b} is kept out of the
// build. It hashes the two words (in sorted order) with the seed, so the
// split is fixed, needs no shuffling, and does not depend on the
// vocabulary: a pair is held out in every model built with the same seed.
func heldOut(seed uint64, a, b string) bool {
	if b < a {
		a, b = b, a
	}
	h := fnv.New64a()
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	h.Write(s[:])
	h.Write([]byte(a))
	h.Write([]byte{0})
	h.Write([]byte(b))
	return mix64(h.Sum64())%100 < heldOutPercent
}

// mix64 is the splitmix64 finaliser: FNV's low bits are weakly mixed, and
// the split takes the hash modulo 100.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func pairKey(a, b int32) uint64 {
	if b < a {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(uint32(b))
}

// buildLexicon turns the synsets into weighted edges between vocabulary
// words: every two words of a synset (synonyms), every word of a synset
// with every word of its hypernyms and instance hypernyms, and for
// adjectives with every word of the synsets it is "similar to". A pair
// joined twice keeps the larger weight. Synonym pairs are split by
// heldOut: a held-out pair loses every direct edge, of any kind.
func buildLexicon(sets []synset, vocab map[string]int32, seed uint64) lexicon {
	ids := make([][]int32, len(sets))
	byKey := make(map[synsetKey]int, len(sets))
	for i := range sets {
		byKey[sets[i].key()] = i
		seen := map[int32]bool{}
		for _, w := range sets[i].words {
			if id, ok := vocab[w]; ok && !seen[id] {
				seen[id] = true
				ids[i] = append(ids[i], id)
			}
		}
	}
	weight := map[uint64]float64{}
	put := func(a, b int32, w float64) {
		if a == b {
			return
		}
		k := pairKey(a, b)
		weight[k] = max(weight[k], w)
	}
	isSyn := map[uint64]bool{}
	var synKeys []uint64 // in first-seen order, which follows the files
	for i := range sets {
		for x, a := range ids[i] {
			for _, b := range ids[i][x+1:] {
				put(a, b, weightSynonym)
				if k := pairKey(a, b); !isSyn[k] {
					isSyn[k] = true
					synKeys = append(synKeys, k)
				}
			}
		}
		for _, p := range sets[i].ptrs {
			var w float64
			switch p.sym {
			case "@", "@i":
				w = weightHypernym
			case "&":
				w = weightSimilar
			default:
				continue
			}
			j, ok := byKey[synsetKey{p.pos, p.offset}]
			if !ok {
				continue
			}
			for _, a := range ids[i] {
				for _, b := range ids[j] {
					put(a, b, w)
				}
			}
		}
	}
	words := make(map[int32]string, len(vocab))
	for w, id := range vocab {
		words[id] = w
	}
	var lx lexicon
	lx.synPairs = len(synKeys)
	for _, k := range synKeys {
		a, b := int32(k>>32), int32(uint32(k))
		if heldOut(seed, words[a], words[b]) {
			lx.heldOut = append(lx.heldOut, [2]int32{a, b})
			delete(weight, k)
		}
	}
	sort.Slice(lx.heldOut, func(i, j int) bool {
		return pairKey(lx.heldOut[i][0], lx.heldOut[i][1]) < pairKey(lx.heldOut[j][0], lx.heldOut[j][1])
	})
	keys := make([]uint64, 0, len(weight))
	for k := range weight {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		lx.edges = append(lx.edges, edge{int32(k >> 32), int32(uint32(k)), weight[k]})
	}
	return lx
}

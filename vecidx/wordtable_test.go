package vecidx

import (
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestWordTableFindsEveryWord: every word of the default model is found
// under its own id, and an ASCII word written in capitals is found
// folded; a word with one byte changed is found only if it is in the
// vocabulary, under the id the map gives.
func TestWordTableFindsEveryWord(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range m.words {
		if got, ok := m.table.find(w, 0, len(w), false); !ok || int(got) != id {
			t.Fatalf("%q: %d %v, want %d", w, got, ok, id)
		}
		if isTokenASCII(w) {
			up := "  " + strings.ToUpper(w) + "  " // inside a longer text
			if got, ok := m.table.find(up, 2, 2+len(w), true); !ok || int(got) != id {
				t.Fatalf("%q folded: %d %v, want %d", up, got, ok, id)
			}
		}
		other := []byte(w)
		other[len(other)/2] ^= 1
		want, inVocab := m.index[string(other)]
		if got, ok := m.table.find(string(other), 0, len(other), false); ok != inVocab || (ok && got != want) {
			t.Fatalf("%q: %d %v, the map says %d %v", other, got, ok, want, inVocab)
		}
	}
}

// isTokenASCII: w is made of the bytes an ASCII token holds.
func isTokenASCII(w string) bool {
	for i := 0; i < len(w); i++ {
		if c := w[i]; c >= 0x80 || (asciiClass[c] == classOther) {
			return false
		}
	}
	return true
}

// TestWordTableMatchesMap: on small random vocabularies and any token, the
// table answers as the map does.
func TestWordTableMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		words := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-c'\-é0-9]{1,11}`), 1, 300, func(s string) string { return s }).Draw(t, "words")
		tab := newWordTable(words)
		index := map[string]int{}
		for i, w := range words {
			index[w] = i
		}
		for range 50 {
			tok := rapid.OneOf(rapid.SampledFrom(words), rapid.StringMatching(`[a-cA-C'\-é0-9]{1,11}`)).Draw(t, "token")
			fold := isTokenASCII(tok) && rapid.Bool().Draw(t, "fold")
			key := tok
			if fold {
				key = strings.ToLower(tok)
			}
			want, ok := index[key]
			got, found := tab.find("<"+tok+">", 1, 1+len(tok), fold)
			if found != ok || (ok && int(got) != want) {
				t.Fatalf("%q (fold %v): %d %v, want %d %v", tok, fold, got, found, want, ok)
			}
		}
	})
}

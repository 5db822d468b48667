package vecidx

import (
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestWordTableFindsEveryWord: every word of the default model is found
// under its own id, with its stop-word flag, and an ASCII word written in
// capitals is found folded; a word with one byte changed is found only if
// it is in the vocabulary, under the id the map gives.
func TestWordTableFindsEveryWord(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range m.words {
		if got, stop, ok := m.table.find(w, 0, len(w), false); !ok || int(got) != id || stop != m.stop[id] {
			t.Fatalf("%q: %d %v %v, want %d %v", w, got, stop, ok, id, m.stop[id])
		}
		if isTokenASCII(w) {
			up := "  " + strings.ToUpper(w) + "  " // inside a longer text
			if got, _, ok := m.table.find(up, 2, 2+len(w), true); !ok || int(got) != id {
				t.Fatalf("%q folded: %d %v, want %d", up, got, ok, id)
			}
		}
		other := []byte(w)
		other[len(other)/2] ^= 1
		want, inVocab := m.index[string(other)]
		if got, _, ok := m.table.find(string(other), 0, len(other), false); ok != inVocab || (ok && got != want) {
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
// table answers as the map does. The words share their first bytes often,
// so that words of more than 16 bytes that agree on the 16 the slot holds
// are common.
func TestWordTableMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		words := rapid.SliceOfNDistinct(rapid.OneOf(rapid.StringMatching(`[a-c'\-é0-9]{1,11}`), rapid.StringMatching(`abcdefg[a-c]{1,4}`), rapid.StringMatching(`abcdefghijklmno[a-c]{1,4}`)), 1, 300, func(s string) string { return s }).Draw(t, "words")
		stop := make([]bool, len(words))
		for i := range stop {
			stop[i] = rapid.Bool().Draw(t, "stop")
		}
		tab := newWordTable(words, stop)
		index := map[string]int{}
		for i, w := range words {
			index[w] = i
		}
		for range 50 {
			tok := rapid.OneOf(rapid.SampledFrom(words), rapid.StringMatching(`[a-cA-C'\-é0-9]{1,11}`), rapid.StringMatching(`abcdefg[a-cA-C]{1,4}`), rapid.StringMatching(`abcdefghijklmno[a-cA-C]{1,4}`)).Draw(t, "token")
			fold := isTokenASCII(tok) && rapid.Bool().Draw(t, "fold")
			key := tok
			if fold {
				key = strings.ToLower(tok)
			}
			want, ok := index[key]
			got, isStop, found := tab.find("<"+tok+">", 1, 1+len(tok), fold)
			if found != ok || (ok && (int(got) != want || isStop != stop[want])) {
				t.Fatalf("%q (fold %v): %d %v %v, want %d %v", tok, fold, got, isStop, found, want, ok)
			}
		}
	})
}

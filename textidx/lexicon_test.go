package textidx

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"dkv/textidx/corpus"

	"pgregory.net/rapid"
)

// TestLexiconMatchesStemmer: every word of the lexicon is found, with the
// stop flag isStopWord gives and the stem stem gives; a word one letter
// off is found only if it is in the list itself.
func TestLexiconMatchesStemmer(t *testing.T) {
	words := strings.Fields(commonWords)
	if len(words) != 4096 {
		t.Fatalf("%d common words", len(words))
	}
	in := map[string]bool{}
	for _, w := range words {
		in[w] = true
	}
	held := 0
	for _, w := range words {
		stop, keep, ending, ok := lexicon.find([]byte(w))
		if !ok {
			continue // an ending past lexiconEndsMax: stemmed when met
		}
		held++
		if want := isStopWord([]byte(w)); stop != want {
			t.Fatalf("%q: stop %v, want %v", w, stop, want)
		}
		if !stop {
			if got, want := w[:keep]+ending, string(stem([]byte(w))); got != want {
				t.Fatalf("%q: stem %q, want %q", w, got, want)
			}
		}
		other := []byte(w)
		other[len(other)-1] = 'a' + (other[len(other)-1]-'a'+1)%26
		if _, _, _, ok := lexicon.find(other); ok != in[string(other)] {
			t.Fatalf("%q: found %v, in the list %v", other, ok, in[string(other)])
		}
	}
	if held < len(words)-100 {
		t.Fatalf("the lexicon holds %d of %d words", held, len(words))
	}
}

// analyzeWithout analyses text with the lexicon off.
func analyzeWithout(text string, o Options) Doc {
	saved := lexicon
	lexicon = nil
	defer func() { lexicon = saved }()
	return Analyze(text, o)
}

// TestAnalyzeSameWithoutLexicon: the lexicon changes nothing Analyze
// returns, on English-like text (common words and made-up ones), on text
// of the lexicon's own words in any case and with any punctuation, and on
// the model tests' texts.
func TestAnalyzeSameWithoutLexicon(t *testing.T) {
	o := DefaultOptions()
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		text := corpus.SyntheticText(r, wordsPer1KB)
		if got, want := Analyze(text, o), analyzeWithout(text, o); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v with the lexicon, %+v without", text, got, want)
		}
	}
	words := strings.Fields(commonWords)
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		for range rapid.IntRange(0, 40).Draw(t, "n") {
			w := rapid.OneOf(rapid.SampledFrom(words), rapid.SampledFrom(modelWords), rapid.StringMatching(`[a-zA-Z']{1,12}`)).Draw(t, "w")
			if rapid.IntRange(0, 5).Draw(t, "upper") == 0 {
				w = strings.ToUpper(w)
			}
			b.WriteString(w)
			b.WriteString(rapid.SampledFrom([]string{" ", ", ", ". ", "-", "'s ", "\n"}).Draw(t, "sep"))
		}
		text := b.String()
		if got, want := Analyze(text, o), analyzeWithout(text, o); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v with the lexicon, %+v without", text, got, want)
		}
	})
}

// TestHashTokenIgnoresCapacity: a token's hash and head depend on its
// bytes only, not on what lies past its end in its buffer.
func TestHashTokenIgnoresCapacity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := []byte(rapid.StringMatching(`[a-z]{1,30}`).Draw(t, "w"))
		junk := rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "junk")
		buf := append(append([]byte{}, w...), junk...)
		h1, head1 := hashToken(w[:len(w):len(w)])
		h2, head2 := hashToken(buf[:len(w)])
		if h1 != h2 || head1 != head2 {
			t.Fatalf("%q: %x %x exact, %x %x with %q after it", w, h1, head1, h2, head2, junk)
		}
	})
}

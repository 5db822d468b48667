package vecidx

import (
	"slices"
	"testing"
)

// The shipped model's shape, as model/BUILD.md records it.
const (
	defaultWords = 44000
	defaultDim   = 100
	// defaultBytesMax: the shipped file stays small enough to keep in the
	// repository and in every binary.
	defaultBytesMax = 5_000_000
)

func TestDefaultModel(t *testing.T) {
	if len(defaultModel) > defaultBytesMax {
		t.Errorf("shipped model is %d bytes, over %d", len(defaultModel), defaultBytesMax)
	}
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim() != defaultDim || m.Len() != defaultWords || !m.Ranked() {
		t.Fatalf("default model %d×%d ranked=%v, want %d×%d ranked", m.Len(), m.Dim(), m.Ranked(), defaultWords, defaultDim)
	}
	// Frequency order: GloVe's most frequent words first.
	if m.Word(0) != "the" {
		t.Errorf("word 0 is %q, want the", m.Word(0))
	}
}

// TestDefaultNeighbours: a garbage or scrambled model fails these. Each
// word must have one of the listed words among its ten nearest.
func TestDefaultNeighbours(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		word string
		any  []string
	}{
		{"king", []string{"queen", "prince"}},
		{"car", []string{"vehicle", "automobile"}},
		{"doctor", []string{"physician", "surgeon"}},
		{"happy", []string{"glad", "joyful"}},
		{"river", []string{"stream", "danube", "nile"}},
		{"big", []string{"large", "huge"}},
	}
	for _, c := range cases {
		nn, err := m.Nearest(c.word, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range nn {
			got = append(got, x.Word)
		}
		hit := false
		for _, w := range c.any {
			hit = hit || slices.Contains(got, w)
		}
		if !hit {
			t.Errorf("%s: nearest %v hold none of %v", c.word, got, c.any)
		}
	}
}

// TestDefaultEmbedRanks: value vectors of texts about the same thing are
// nearer each other than to a text about something else.
func TestDefaultEmbedRanks(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	emb := func(s string) []float32 {
		v, err := m.Embed(s)
		if err != nil {
			t.Fatalf("Embed(%q): %v", s, err)
		}
		return v
	}
	cases := []struct{ a, b, other string }{
		{"The cat sat on the mat.", "A kitten slept on the rug.", "Stock prices fell sharply on Monday."},
		{"Shares dropped as markets slid.", "Stock prices fell sharply on Monday.", "A kitten slept on the rug."},
		{"The physician treated the patient.", "A doctor saw a sick woman in hospital.", "The striker scored a goal in the final."},
	}
	for _, c := range cases {
		a, b, o := emb(c.a), emb(c.b), emb(c.other)
		if ab, ao := dot(a, b), dot(a, o); ab <= ao {
			t.Errorf("%q: %q scores %.3f, not above %q at %.3f", c.a, c.b, ab, c.other, ao)
		}
	}
}

// BenchmarkDefault: parsing the shipped model, checksum and all.
func BenchmarkDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmbed: one value vector of a 60-word text.
func BenchmarkEmbed(b *testing.B) {
	m, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	text := "Retrofitting moves each word vector towards the vectors of its synonyms and hypernyms in a lexicon, " +
		"so that words a dictionary calls alike end up near each other while the distributional information the " +
		"vectors learned from a large corpus of news and encyclopedia text is mostly kept, which helps rank values " +
		"by meaning rather than by exact words."
	for b.Loop() {
		if _, err := m.Embed(text); err != nil {
			b.Fatal(err)
		}
	}
}

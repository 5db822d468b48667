package vecidx

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
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

// TestDefaultEmbedTopics: texts about a topic rank texts about the same
// topic first. Each of 20 topics is a seed word and its 30 nearest words;
// a text is 150 words of the bench's Zipf-drawn prose (stop words and
// all) with a share of them drawn from its topic instead. For every text,
// the 9 other texts of its topic should be its 9 nearest. Removing the
// common component must rank at least as well as the plain weighted mean
// (measured: at 10% topic words 0.93 against 0.90, at 5% 0.57 against
// 0.44), since it is there to let what a text is about outweigh the
// words every text shares.
func TestDefaultEmbedTopics(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if m.common == nil {
		t.Fatal("the default model has no common direction")
	}
	plain := *m
	plain.common = nil
	corpus := newBenchCorpus(m)
	seeds := []string{"music", "football", "medicine", "bank", "cooking", "computer", "war", "weather", "religion", "ocean",
		"car", "school", "election", "film", "farm", "law", "space", "fashion", "crime", "bird"}
	const perTopic, words = 10, 150
	cases := []struct {
		percent       int     // of a text's words drawn from its topic
		min, minPlain float64 // precision@9 floors, with and without removal
	}{
		{20, 0.99, 0.9},
		{10, 0.9, 0.8},
		{5, 0.45, 0.3},
	}
	for _, c := range cases {
		r := rand.New(rand.NewPCG(9, uint64(c.percent)))
		var texts []string
		var topicOf []int
		for ti, seed := range seeds {
			near, err := m.Nearest(seed, 30)
			if err != nil {
				t.Fatal(err)
			}
			topic := []string{seed}
			for _, w := range near {
				topic = append(topic, w.Word)
			}
			for range perTopic {
				var b strings.Builder
				for range words {
					w := corpus.word(r)
					if r.IntN(100) < c.percent {
						w = topic[r.IntN(len(topic))]
					}
					b.WriteString(w + " ")
				}
				texts = append(texts, b.String())
				topicOf = append(topicOf, ti)
			}
		}
		precision := func(m *Model) float64 {
			vecs := make([][]float32, len(texts))
			for i, text := range texts {
				if vecs[i], err = m.Embed(text); err != nil {
					t.Fatal(err)
				}
			}
			hits := 0
			for i := range texts {
				var near []cand
				for j := range texts {
					if j != i {
						near = append(near, cand{dot(vecs[i], vecs[j]), uint32(j)})
					}
				}
				slices.SortFunc(near, cmpNearer)
				for _, n := range near[:perTopic-1] {
					if topicOf[n.id] == topicOf[i] {
						hits++
					}
				}
			}
			return float64(hits) / float64(len(texts)*(perTopic-1))
		}
		got, base := precision(m), precision(&plain)
		t.Logf("%d%% topic words: precision@%d %.3f with the common component removed, %.3f without", c.percent, perTopic-1, got, base)
		if got < c.min || base < c.minPlain || got < base {
			t.Errorf("%d%% topic words: precision %.3f (floor %.2f), plain mean %.3f (floor %.2f)", c.percent, got, c.min, base, c.minPlain)
		}
	}
}

// TestDefaultCommonRemoved: value vectors have no component along the
// common direction, and 1 KB texts of unrelated words no longer crowd
// together (their mean cosine was 0.97 with the plain mean).
func TestDefaultCommonRemoved(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	corpus := newBenchCorpus(m)
	r := rand.New(rand.NewPCG(1, 2))
	var prev []float32
	sum, pairs := 0.0, 0
	for range 200 {
		v, err := m.Embed(corpus.text(r, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if p := dot(v, m.common); math.Abs(float64(p)) > 1e-5 {
			t.Fatalf("component %g along the common direction", p)
		}
		if prev != nil {
			sum += float64(dot(v, prev))
			pairs++
		}
		prev = v
	}
	if mean := sum / float64(pairs); math.Abs(mean) > 0.1 {
		t.Errorf("mean cosine of unrelated 1 KB texts %.3f, want near 0", mean)
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

package indexes

import (
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"dkv/textidx"
	"dkv/vecidx"
)

var builtin struct {
	once sync.Once
	m    *vecidx.Model
	err  error
}

// builtinModel is the shipped model, parsed once for the package's tests.
func builtinModel(t testing.TB) *vecidx.Model {
	t.Helper()
	builtin.once.Do(func() { builtin.m, builtin.err = vecidx.Default() })
	if builtin.err != nil {
		t.Fatal(builtin.err)
	}
	return builtin.m
}

// separate is the reference for Set.analyse: the value analysed and
// embedded each on its own, as before the two shared a reading.
func separate(m *vecidx.Model, value string, o textidx.Options) (textidx.Doc, []float32) {
	doc := textidx.Analyze(value, o)
	v, err := m.Embed(value)
	if err != nil {
		return doc, nil
	}
	return doc, v
}

// sameAnalysis fails t unless analyse's answers are the reference's: the
// same Doc (terms, positions, lengths, layout) and the same vector, bit
// for bit, or both none.
func sameAnalysis(t interface {
	Helper()
	Fatalf(string, ...any)
}, s *Set, value string) {
	t.Helper()
	doc, v := s.analyse(value)
	wantDoc, wantV := separate(s.cfg.Model, value, s.cfg.Text)
	if !reflect.DeepEqual(doc, wantDoc) {
		t.Fatalf("value %q: Doc\n%v %v\nwant\n%v %v", value, doc.Terms(), doc.Len(), wantDoc.Terms(), wantDoc.Len())
	}
	if (v == nil) != (wantV == nil) || len(v) != len(wantV) {
		t.Fatalf("value %q: vector %v, want %v", value, v, wantV)
	}
	for i := range v {
		if math.Float32bits(v[i]) != math.Float32bits(wantV[i]) {
			t.Fatalf("value %q: vector[%d] = %v, want %v", value, i, v[i], wantV[i])
		}
	}
}

func TestAnalyseCases(t *testing.T) {
	m := builtinModel(t)
	s := New(DefaultConfig(m, "built-in"))
	long := strings.Repeat("antidisestablishmentarianism", 3)
	many := strings.Repeat("The cats' owner's dog-sled raced 12 miles. ", 300) // over TextWordsMax words
	for _, v := range []string{
		"", " ", "hello world", "Hello WORLD, hello again", "The the THE of",
		"don't stop-believing rock'n'roll john's o'clock state-owned",
		"x'y x-'y a--b 'quoted' -dash- end'", "abc123 4th 1999 covid19 x2",
		long + " and " + long[:60] + " word", "tab\tnew\nline\rcr", "form\ffeed text",
		"café crème naïve", "東京 tokyo", "it’s curly", "\x00binary", "zzzzqqq xxyyzz",
		strings.Repeat("+/=", 40), "aGVsbG8= base", "ab !!!!!!!!!! cd", "the (((( cat )))) ++",
		"a1 b2 c3 d4 e5 --- ?? !!", "4 8 15 16 23 42 answers", many, many + "tail words after",
		strings.Repeat("word ", 70000), // over vecidx.TextBytesMax: analysed separately
	} {
		sameAnalysis(t, s, v)
	}
}

// TestAnalyseProperty: on random text, ASCII and not, analyse gives what
// analysing and embedding separately give, with default and small limits.
func TestAnalyseProperty(t *testing.T) {
	m := builtinModel(t)
	vocab := []string{"the", "of", "running", "Runs", "generously", "relational", "happiness",
		"skies", "dying", "news", "international", "king's", "don't", "state-owned", "e-mail",
		"o'clock", "1990s", "x", "a", "conditional", "hopefully", "ability", "sensational"}
	for i := 0; i < m.Len(); i += 97 {
		vocab = append(vocab, m.Word(i))
	}
	small := textidx.DefaultOptions()
	small.TokenBytesMax, small.PositionsPerTermMax, small.TermsPerDocMax = 6, 2, 5
	sets := []*Set{New(DefaultConfig(m, "built-in")), New(Config{Text: small, Model: m, Vec: vecidx.DefaultIndexOptions()})}
	words := rapid.OneOf(
		rapid.SampledFrom(vocab),
		rapid.StringMatching(`[a-zA-Z0-9'\-]{1,20}`),
		rapid.String(), // any Unicode, controls and invalid bytes' runes included
	)
	plainWords := rapid.OneOf(rapid.SampledFrom(vocab), rapid.StringMatching(`[a-zA-Z0-9'\-]{1,20}`), rapid.StringMatching(`[ -~]{1,70}`), rapid.StringMatching(`[!-/:-@\[-\x60{-~ ]{1,30}`))
	seps := []string{" ", " ", ", ", ". ", "-", "'", "'s ", "\n", "\t", "--", " '", "\r\n", "’", "\x01", "é"}
	plains := 0
	rapid.Check(t, func(t *rapid.T) {
		// Half the values are plain, which the shared reading takes; the
		// rest mostly are not, and must be analysed as before.
		plain := rapid.Bool().Draw(t, "plain")
		var b strings.Builder
		for range rapid.IntRange(0, 60).Draw(t, "n") {
			var w string
			if plain {
				w = plainWords.Draw(t, "w")
			} else {
				w = words.Draw(t, "w")
			}
			switch rapid.IntRange(0, 6).Draw(t, "case") {
			case 0:
				w = strings.ToUpper(w)
			case 1:
				if w != "" {
					w = strings.ToUpper(w[:1]) + w[1:]
				}
			}
			b.WriteString(w)
			if plain {
				b.WriteString(rapid.SampledFrom(seps[:12]).Draw(t, "sep"))
			} else {
				b.WriteString(rapid.SampledFrom(seps).Draw(t, "sep"))
			}
		}
		s := sets[rapid.IntRange(0, 1).Draw(t, "set")]
		var a textidx.Scanned
		if a.Start(b.String(), s.cfg.Text, vecidx.TextBytesMax) {
			plains++
		}
		sameAnalysis(t, s, b.String())
	})
	if plains == 0 {
		t.Fatal("no value took the shared reading")
	}
	t.Logf("%d values took the shared reading", plains)
}

// TestAnalyseCorpus: the bench's kind of value, 1 KB of the model's words.
func TestAnalyseCorpus(t *testing.T) {
	m := builtinModel(t)
	s := New(DefaultConfig(m, "built-in"))
	for _, v := range benchTexts(m, 200) {
		sameAnalysis(t, s, v)
	}
}

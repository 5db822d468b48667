package textidx

import (
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestWordCode: a code holds the stop flag isStopWord gives and the stem
// stem gives; words that are not lower-case letters get none.
func TestWordCode(t *testing.T) {
	words := append(strings.Fields(commonWords), "generously", "relational", "happiness", "skies",
		"dying", "conditional", "sensational", "hopefully", "ability", "internationalization", "the", "ourselves")
	coded := 0
	for _, w := range words {
		c := WordCode(w)
		if c == 0 {
			continue
		}
		coded++
		if stop := c&wordCodeStop != 0; stop != isStopWord([]byte(w)) {
			t.Fatalf("%q: stop %v", w, stop)
		}
		if c&wordCodeStop != 0 {
			continue
		}
		var term []byte
		term = append(term, w[:c>>wordCodeKeepShift&63]...)
		for i := range int(c >> wordCodeEndShift & 0xff) {
			term = append(term, byte(c>>(8*i)))
		}
		if want := string(stem([]byte(w))); string(term) != want {
			t.Fatalf("%q: term %q, stem %q", w, term, want)
		}
	}
	if coded < len(words)-10 {
		t.Fatalf("%d of %d words coded", coded, len(words))
	}
	for _, w := range []string{"", "Cat", "x1", "don't", "e-mail", "café", strings.Repeat("a", stemBytesMax+1)} {
		if c := WordCode(w); c != 0 {
			t.Fatalf("%q coded %x", w, c)
		}
	}
}

// scanWords is the embedding model's reading of plain text, written out
// for this package's tests: runs of ASCII letters and digits, joined by '
// or - between two of them.
func scanWords(text string, visit func(start, end int)) {
	isWord := func(i int) bool {
		if i >= len(text) {
			return false
		}
		c := asciiClass[text[i]]
		return c == classLower || c == classUpper || c == classDigit
	}
	for i := 0; i < len(text); {
		if !isWord(i) {
			i++
			continue
		}
		j := i
		for isWord(j) || ((text[j] == '\'' || text[j] == '-') && j > i && isWord(j+1)) {
			j++
		}
		visit(i, j)
		i = j
	}
}

// scannedDoc analyses plain text through Scanned, with codes from vocab
// (lower-cased), the rest read by the tokenizer; ok is false when Start
// refuses the text. wordsMax stops the scan early, as the embedding's
// limit on the words it reads does.
func scannedDoc(text string, o Options, vocab map[string]bool, wordsMax int) (Doc, bool) {
	var a Scanned
	if !a.Start(text, o, 1<<16) {
		return Doc{}, false
	}
	n := 0
	scanWords(text, func(start, end int) {
		if n == wordsMax {
			return
		}
		n++
		var code uint64
		if w := strings.ToLower(text[start:end]); vocab[w] {
			code = WordCode(w)
		}
		a.Word(start, end, code)
	})
	return a.Doc(), true
}

// TestScannedMatchesAnalyze: on plain text, at default and small limits,
// and with the scan stopped early, Scanned's Doc is Analyze's.
func TestScannedMatchesAnalyze(t *testing.T) {
	vocab := map[string]bool{}
	for _, w := range strings.Fields(commonWords) {
		vocab[w] = true
	}
	small := DefaultOptions()
	small.TokenBytesMax, small.PositionsPerTermMax, small.TermsPerDocMax = 5, 2, 4
	common := strings.Fields(commonWords)[:300]
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		for range rapid.IntRange(0, 50).Draw(t, "n") {
			w := rapid.OneOf(rapid.SampledFrom(common), rapid.StringMatching(`[a-zA-Z0-9'\-]{1,12}`),
				rapid.StringMatching(`[ -~]{1,20}`)).Draw(t, "w")
			if rapid.IntRange(0, 4).Draw(t, "upper") == 0 {
				w = strings.ToUpper(w)
			}
			b.WriteString(w)
			b.WriteString(rapid.SampledFrom([]string{" ", ", ", "-", "'", "'s ", "\n", "\t", "!!"}).Draw(t, "sep"))
		}
		text := b.String()
		o := DefaultOptions()
		if rapid.Bool().Draw(t, "small") {
			o = small
		}
		d, ok := scannedDoc(text, o, vocab, rapid.IntRange(0, 60).Draw(t, "wordsMax"))
		if !ok {
			t.Fatalf("plain text %q refused", text)
		}
		if want := Analyze(text, o); !reflect.DeepEqual(d, want) {
			t.Fatalf("%q: %v, Analyze %v", text, d.Terms(), want.Terms())
		}
	})
}

// TestScannedRefuses: text that is not plain ASCII, or too long, is left
// to Analyze.
func TestScannedRefuses(t *testing.T) {
	for _, text := range []string{"café", "tab\tok\x01", "del\x7f", "form\ffeed", "it’s", "\xff"} {
		var a Scanned
		if a.Start(text, DefaultOptions(), 1<<16) {
			t.Fatalf("%q taken", text)
		}
	}
	var a Scanned
	if a.Start("a few words", DefaultOptions(), 5) {
		t.Fatal("text over the limit taken")
	}
	if !a.Start("tab\tnew\nline\r fine", DefaultOptions(), 1<<16) {
		t.Fatal("plain text refused")
	}
}

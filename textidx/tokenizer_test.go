package textidx

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// words returns the tokenizer's words of text, with "…" marking a word over
// bytesMax.
func words(text string, bytesMax int) []string {
	tz := newTokenizer(text, bytesMax, nil)
	var out []string
	for tz.next() {
		if tz.long {
			out = append(out, "…")
			continue
		}
		out = append(out, string(tz.tok))
	}
	return out
}

func TestTokenizerWords(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{"plain", "Hello, World!", []string{"hello", "world"}},
		{"accents", "Crème Brûlée", []string{"crème", "brûlée"}},
		{"diaeresis", "a naïve café", []string{"a", "naïve", "café"}},
		{"combining marks stay in the word (no normalisation)", "Cre\u0300me", []string{"cre\u0300me"}},
		{"upper-case non-ASCII", "ÉCOLE ΣΟΦΙΑ", []string{"école", "σοφια"}},
		{"cjk unigrams", "東京で寿司", []string{"東", "京", "で", "寿", "司"}},
		{"cjk next to latin", "Go言語 rocks", []string{"go", "言", "語", "rocks"}},
		{"hangul words", "안녕하세요 세계", []string{"안녕하세요", "세계"}},
		// Thai and Khmer are written without spaces between words, like
		// Han: each letter is a word, with its vowel and tone marks.
		{"thai unigrams", "ที่ไทย", []string{"ที่", "ไ", "ท", "ย"}},
		{"khmer unigrams", "ខ្មែរ", []string{"ខ្", "មែ", "រ"}},
		{"thai digits", "๑๒ ok", []string{"๑", "๒", "ok"}},
		{"kana with a combining mark", "か\u3099", []string{"か\u3099"}},
		{"digits", "COVID-19 in 2024: 3.14", []string{"covid", "19", "in", "2024", "3", "14"}},
		{"letters and digits", "mp3 player v2", []string{"mp3", "player", "v2"}},
		{"full-width digits", "１２３ go", []string{"１２３", "go"}},
		{"punctuation", "foo,bar;baz/qux-quux (x) [y] {z} a_b", []string{"foo", "bar", "baz", "qux", "quux", "x", "y", "z", "a", "b"}},
		{"emoji", "I ❤️ Go 🚀🚀 fast", []string{"i", "go", "fast"}},
		{"whitespace", "\tone\ntwo\r\nthree  four\u00a0five", []string{"one", "two", "three", "four", "five"}},
		{"contraction", "don't won't", []string{"dont", "wont"}},
		{"possessive", "John's book", []string{"john", "book"}},
		{"possessive upper", "JOHN'S", []string{"john"}},
		{"typographic apostrophe", "it’s Mary’s", []string{"it", "mary"}},
		{"inner apostrophes", "rock'n'roll o'clock", []string{"rocknroll", "oclock"}},
		{"quotes around", "'quoted' students' \"x\"", []string{"quoted", "students", "x"}},
		{"apostrophe s inside a word", "it'sy", []string{"itsy"}},
		{"empty", "", nil},
		{"only punctuation", "!?., -- ...", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := words(c.text, 64); !slices.Equal(got, c.want) {
				t.Errorf("words(%q) = %q, want %q", c.text, got, c.want)
			}
		})
	}
}

func TestTokenizerLongWords(t *testing.T) {
	long := strings.Repeat("x", 65)
	if got, want := words("a "+long+" b", 64), []string{"a", "…", "b"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// A word of exactly the limit is kept; the limit counts bytes.
	if got := words(strings.Repeat("é", 32), 64); len(got) != 1 || got[0] == "…" {
		t.Errorf("32 two-byte runes (64 bytes): got %q", got)
	}
	if got := words(strings.Repeat("é", 33), 64); !slices.Equal(got, []string{"…"}) {
		t.Errorf("33 two-byte runes (66 bytes): got %q", got)
	}
}

// TestTokenizerTotal feeds arbitrary strings: the tokenizer must end,
// produce only valid UTF-8 words within the limit, and never panic.
func TestTokenizerTotal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		text := rapid.OneOf(rapid.String(), rapid.StringOf(rapid.SampledFrom([]rune("aZ9s '’\"-.\x00\x01éÉ東ー\u0301\u0085\u00a0\ufffd"))),
			rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) })).Draw(t, "text")
		tz := newTokenizer(text, 16, nil)
		for n := 0; tz.next(); n++ {
			if n > len(text) {
				t.Fatalf("more words than bytes in %q", text)
			}
			if len(tz.tok) == 0 || len(tz.tok) > 16 || !utf8.Valid(tz.tok) {
				t.Fatalf("bad word %q in %q", tz.tok, text)
			}
		}
		d := Analyze(text, DefaultOptions())
		checkDocShape(t, d, DefaultOptions())
	})
}

// checkDocShape asserts what Put relies on.
func checkDocShape(t interface{ Fatalf(string, ...any) }, d Doc, o Options) {
	n := d.nterms()
	if n == 0 {
		if d.length != 0 {
			t.Fatalf("empty Doc with length %d", d.length)
		}
		return
	}
	f := d.forward()
	if len(d.hb) != 2*n || len(d.fwd) != forwardWords(n, f.start(n), d.narrow)+1 {
		t.Fatalf("Doc parts disagree: %d terms, %d hashes and bounds, %d positions, %d forward words", n, len(d.hb), f.start(n), len(d.fwd))
	}
	total := uint32(0)
	seen := map[string]bool{}
	for i := range n {
		term := d.term(i)
		if seen[term] {
			t.Fatalf("term %q twice", term)
		}
		seen[term] = true
		if d.hashes[i] != termHash(term) {
			t.Fatalf("term %q hash %x, want %x", term, d.hashes[i], termHash(term))
		}
		if i > 0 && d.hashes[i-1]>>32 > d.hashes[i]>>32 {
			t.Fatalf("terms out of hash order at %d", i)
		}
		var ps []uint32
		for k := f.start(i); k < f.start(i+1); k++ {
			ps = append(ps, f.pos(k))
		}
		if len(ps) != min(int(f.freq(i)), o.PositionsPerTermMax) {
			t.Fatalf("term %q: %d positions for %d occurrences", term, len(ps), f.freq(i))
		}
		if f.tag(i) != f.tagOf(d.hashes[i]) {
			t.Fatalf("term %q: tag %x of hash %x", term, f.tag(i), d.hashes[i])
		}
		if !slices.IsSorted(ps) {
			t.Fatalf("term %q: positions %v not ascending", term, ps)
		}
		total += f.freq(i)
	}
	if total != d.length || n > o.TermsPerDocMax {
		t.Fatalf("length %d, Σ freqs %d, %d terms", d.length, total, n)
	}
}

func TestAnalyze(t *testing.T) {
	o := DefaultOptions()
	d := Analyze("The cats are running; the cat runs. Running!", o)
	checkDocShape(t, d, o)
	// the(0) cats(1) are(2) running(3) the(4) cat(5) runs(6) running(7)
	want := map[string][]int{"cat": {1, 5}, "run": {3, 6, 7}}
	if got := d.Terms(); len(got) != len(want) {
		t.Fatalf("terms %q, want the keys of %v", got, want)
	}
	for term, ps := range want {
		if d.Freq(term) != len(ps) || !slices.Equal(d.Positions(term), ps) {
			t.Errorf("%s: freq %d positions %v, want %v", term, d.Freq(term), d.Positions(term), ps)
		}
	}
	if d.Len() != 5 {
		t.Errorf("Len %d, want 5 (stop words do not count)", d.Len())
	}
}

func TestAnalyzeLimits(t *testing.T) {
	o := DefaultOptions()
	o.TermsPerDocMax = 2
	o.PositionsPerTermMax = 2
	o.TokenBytesMax = 8
	d := Analyze("alpha beta alpha gamma alpha beta extraordinarily delta", o)
	checkDocShape(t, d, o)
	if got := d.Terms(); len(got) != 2 || d.Freq("alpha") != 3 || d.Freq("beta") != 2 || d.Freq("gamma") != 0 {
		t.Fatalf("terms %q alpha %d beta %d gamma %d: want alpha and beta only", got, d.Freq("alpha"), d.Freq("beta"), d.Freq("gamma"))
	}
	if got := d.Positions("alpha"); !slices.Equal(got, []int{0, 2}) {
		t.Errorf("alpha positions %v, want the first two, [0 2]", got)
	}
	if d.Len() != 5 {
		t.Errorf("Len %d, want 5 (dropped terms do not count)", d.Len())
	}
}

// The scratch that finds a value's distinct terms is bounded by the terms
// a Doc keeps (TermsPerDocMax), not by the value's words: sized by the
// words, 1 MiB of one short word repeated took 19 MB of it (a table of a
// million slots and four more words a word) for one term, and 1 MiB of
// distinct words as much for the 4,096 terms kept.
func TestAnalyzeScratchBoundedByTerms(t *testing.T) {
	o := DefaultOptions()
	// The scratch of TermsPerDocMax terms, what a value of more words
	// may have: a table at most half full, and four words a term (192
	// KiB).
	bound := 2*o.TermsPerDocMax + 4*o.TermsPerDocMax
	var distinct strings.Builder
	for i := 0; distinct.Len() < 1<<20; i++ {
		fmt.Fprintf(&distinct, "w%x ", i)
	}
	for _, c := range []struct {
		name, text string
		terms      int
	}{
		{"one word repeated", strings.Repeat("ab ", 1<<20/3), 1},
		{"distinct words", distinct.String(), o.TermsPerDocMax},
	} {
		d, _, _, scratch := analyze(c.text, o, nil, nil, nil)
		if len(d.Terms()) != c.terms {
			t.Fatalf("%s: %d terms, want %d", c.name, len(d.Terms()), c.terms)
		}
		if cap(scratch) > bound {
			t.Errorf("%s: %d words of scratch for %d terms, over %d", c.name, cap(scratch), c.terms, bound)
		}
	}
}

func TestStopWords(t *testing.T) {
	n := len(stopWords.words)
	if n < 120 || n > 180 {
		t.Errorf("%d stop words, want 120 to 180", n)
	}
	for _, w := range stopWords.words {
		if strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" || len(w) > stopWordBytesMax {
			t.Errorf("stop word %q is not lower-case ASCII within %d bytes", w, stopWordBytesMax)
		}
		if !isStopWord([]byte(w)) {
			t.Errorf("%q not found", w)
		}
	}
	for _, w := range []string{"cat", "data", "store", "thee", "", "ab", "themselvesx"} {
		if isStopWord([]byte(w)) {
			t.Errorf("%q taken for a stop word", w)
		}
	}
	// A stop word takes a position: "fish" is at 3 in "the fish" after "of a".
	d := Analyze("Of a the fish, don't", DefaultOptions())
	if got := d.Positions("fish"); !slices.Equal(got, []int{3}) || len(d.Terms()) != 1 {
		t.Errorf("terms %q, fish at %v: want only fish, at 3", d.Terms(), got)
	}
}

func TestNonText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	blob := make([]byte, 1500)
	for i := range blob {
		blob[i] = byte(r.Uint32())
	}
	hex := strings.Repeat("deadbeef0123456789abcdef", 40)
	cases := []struct {
		name   string
		text   string
		isText bool
	}{
		{"english", "The quick brown fox jumps over the lazy dog.", true},
		{"tabs and newlines", "line one\tcolumn\r\nline two\n", true},
		{"some numbers", "Order 12345 shipped on 2024-01-01 for $99.99", true},
		{"short base64 is just a word", "aGVsbG8=", true},
		{"invalid utf-8", "hello \xff\xfe world", false},
		{"nul", "hello\x00world", false},
		{"control", "hello \x01 world", false},
		{"escape", "\x1b[31mred\x1b[0m", false},
		{"c1 control", "hello \u0085\u0090 world", false},
		{"random bytes", string(blob), false},
		{"base64 blob", base64.StdEncoding.EncodeToString(blob), false},
		{"base64 mime lines", mimeLines(base64.StdEncoding.EncodeToString(blob)), false},
		{"hex", hex, false},
		{"numbers", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", false},
		{"json numbers", "[1.5,2.25,3,4e10,-7]", false},
		{"symbols", "++ -- ** // == !! ?? a", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Analyze(c.text, DefaultOptions())
			if got := len(d.Terms()) > 0; got != c.isText {
				t.Errorf("indexed %v (terms %q), want %v", got, d.Terms(), c.isText)
			}
		})
	}
}

func mimeLines(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76])
		b.WriteString("\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// TestAnalyzerReuse: an Analyzer reused over many values gives the Docs
// Analyze gives, and earlier Docs are not changed by later calls.
func TestAnalyzerReuse(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t)
		a := NewAnalyzer(o)
		var texts []string
		var docs []Doc
		for i, n := 0, rapid.IntRange(1, 8).Draw(t, "n"); i < n; i++ {
			text := drawText(t, "text")
			if rapid.IntRange(0, 5).Draw(t, "big") == 0 {
				text = strings.Repeat(text+" ", 2000) // past the scratch kept
			}
			texts = append(texts, text)
			docs = append(docs, a.Analyze(text))
		}
		for i, text := range texts {
			if want := Analyze(text, o); !reflect.DeepEqual(docs[i], want) {
				t.Fatalf("text %d: Analyzer gave %+v, Analyze %+v", i, docs[i], want)
			}
		}
	})
}

// TestLowerBytes: the eight-byte test counts the leading a–z bytes,
// whatever the bytes.
func TestLowerBytes(t *testing.T) {
	for c := range 256 {
		b := string([]byte{byte(c), 'a', 'b', 'c', 'x', 'y', 'z', 'q'})
		want := 0
		if 'a' <= c && c <= 'z' {
			want = 8
		}
		if got := lowerBytes(b); got != want {
			t.Fatalf("lowerBytes(%q) = %d, want %d", b, got, want)
		}
		for at := 1; at < 8; at++ {
			b := []byte("abcdefgh")
			b[at] = byte(c)
			want := at
			if 'a' <= c && c <= 'z' {
				want = 8
			}
			if got := lowerBytes(string(b)); got != want {
				t.Fatalf("lowerBytes(%q) = %d, want %d", b, got, want)
			}
		}
	}
}

package vecidx

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestTokenize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Hello, World!", "hello world"},
		{"don't stop", "don't stop"},
		{"it\u2019s", "it's"},
		{"state-owned firms", "state-owned firms"},
		{"rock\u2014roll", "rock roll"},
		{"end- -start", "end start"},
		{"'quoted' \"twice\"", "quoted twice"},
		{"x-'y", "x y"},
		{"--x--", "x"},
		{"Café ÜBER naïve", "café über naïve"},
		{"a1b2 42 3.14", "a1b2 42 3 14"},
		{"ᛮA ᛮ-b é-x x-é", "a b é-x x-é"}, // a word after a wide non-word character
		{"tab\tnew\nline", "tab new line"},
		{"", ""},
		{"  ... !!", ""},
	}
	for _, c := range cases {
		if got := strings.Join(Tokenize(c.in), " "); got != c.want {
			t.Errorf("Tokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTokenizeLimits(t *testing.T) {
	many := strings.Repeat("word ", 3*TextWordsMax)
	if got := len(Tokenize(many)); got != TextWordsMax {
		t.Errorf("%d words read, want TextWordsMax %d", got, TextWordsMax)
	}
	// A word running into the TextBytesMax cut is dropped, not read as a
	// fragment.
	head := strings.Repeat("x", TextBytesMax-3)
	got := Tokenize(head + " longword")
	if len(got) != 1 || got[0] != head {
		t.Errorf("the cut word was read: %d tokens, last %.20q", len(got), got[len(got)-1])
	}
	// A cut inside a multi-byte character backs off to a whole one and
	// leaves valid UTF-8 (so the text does not look binary).
	m := embTestModel(t)
	text := "cat " + strings.Repeat("é", TextBytesMax) // 2 bytes each
	if _, err := m.Embed(text); err != nil {
		t.Errorf("long text with a cut character: %v", err)
	}
	// A 16 MB value costs what its first TextBytesMax bytes cost: the
	// words after them do not count.
	huge := "king dog " + strings.Repeat("zzz ", TextWordsMax-2) + strings.Repeat("cat ", 4<<20)
	vec, err := m.Embed(huge)
	if err != nil {
		t.Fatal(err)
	}
	if want := embedBrute(m, []string{"king", "dog"}); !closeVec(vec, want, 1e-6) {
		t.Errorf("huge text: %v, want the first two words' mean %v", vec, want)
	}
}

// embTestModel is a small ranked model whose words exercise every
// fallback rule; word i's vector is a fixed pseudo-random direction. At 8
// dimensions, below commonDimMin, Embed keeps the plain weighted mean.
func embTestModel(t testing.TB) *Model { return embTestModelDim(t, 8) }

// embTestModelDim is embTestModel at dim dimensions. Every component is
// drawn from [0, 1), so the vectors share a common direction, as
// corpus-trained ones do.
func embTestModelDim(t testing.TB, dim int) *Model {
	t.Helper()
	words := []string{"the", "cat", "dog", "king", "city", "box", "state", "owned", "oclock", "bus", "run", "rare", "and", "of"}
	vecs := make([][]float32, len(words))
	x := uint64(12345)
	for i := range vecs {
		vecs[i] = make([]float32, dim)
		for j := range vecs[i] {
			x = x*6364136223846793005 + 1442695040888963407
			vecs[i][j] = float32(int64(x>>33)%1000) / 1000
		}
	}
	m, err := NewModel(words, vecs, true)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// embedBrute is Embed's specification for a bag of known words, written
// out in float64: the sum of each word's vector times its Zipf SIF weight;
// from commonDimMin dimensions on, less its projection on the common
// direction (the weighted mean of the vocabulary's non-stop words, each
// weighted by its Zipf probability too); normalised.
func embedBrute(m *Model, words []string) []float32 {
	h := 0.0
	for r := 1; r <= m.Len(); r++ {
		h += 1 / float64(r)
	}
	weight := func(r int) float64 { // r is 1-based
		if !m.Ranked() {
			return 1
		}
		return sifA / (sifA + 1/(float64(r)*h))
	}
	sum := make([]float64, m.Dim())
	for _, w := range words {
		r := int(m.index[w]) + 1
		v, _ := m.Lookup(w)
		for j := range v {
			sum[j] += weight(r) * float64(v[j])
		}
	}
	if m.Dim() >= commonDimMin {
		c := make([]float64, m.Dim())
		for i := range m.Len() {
			if stopWords[m.Word(i)] {
				continue
			}
			p := 1 / float64(m.Len())
			if m.Ranked() {
				p = 1 / (float64(i+1) * h)
			}
			v, _ := m.Lookup(m.Word(i))
			for j := range v {
				c[j] += p * weight(i+1) * float64(v[j])
			}
		}
		cn, proj := 0.0, 0.0
		for j := range c {
			cn += c[j] * c[j]
			proj += c[j] * sum[j]
		}
		for j := range sum {
			sum[j] -= proj / cn * c[j]
		}
	}
	n := 0.0
	for _, f := range sum {
		n += f * f
	}
	out := make([]float32, len(sum))
	for j := range sum {
		out[j] = float32(sum[j] / math.Sqrt(n))
	}
	return out
}

func closeVec(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}

// TestEmbedWordRules: which words a text contributes, fallbacks included.
func TestEmbedWordRules(t *testing.T) {
	m := embTestModel(t)
	cases := []struct {
		text  string
		words string // the known words Embed should average
	}{
		{"cat", "cat"},
		{"The CAT", "cat"},                            // stop word skipped, case folded
		{"cat zzyzx qwerty", "cat"},                   // unknown words skipped
		{"cats", "cat"},                               // -s
		{"cities", "city"},                            // -ies → -y
		{"boxes", "box"},                              // -es
		{"King's", "king"},                            // 's
		{"king\u2019s", "king"},                       // typographic apostrophe
		{"o'clock", "oclock"},                         // apostrophes removed
		{"state-owned", "state owned"},                // hyphen parts
		{"the-cat", "cat"},                            // stop-word part skipped
		{"dog-zzz", "dog"},                            // unknown part skipped
		{"dogs cat dog", "dog cat dog"},               // repeats count
		{"buss", ""},                                  // "-ss" is not a plural
		{"bus", "bus"},                                // exact
		{"runs running", "run"},                       // no stemming beyond plurals
		{"rare!!! cat?", "rare cat"},                  // punctuation separates
		{"the cat\x01 sat on the dog mat", "cat dog"}, // one control character in 28 is not binary
		{"zzz the of and cat", "cat"},                 // mixed
		{"cat " + strings.Repeat("zzz ", TextWordsMax-1) + "dog", "cat"}, // dog is word 1001
	}
	for _, c := range cases {
		got, err := m.Embed(c.text)
		if c.words == "" {
			if !errors.Is(err, ErrNoKnownWords) {
				t.Errorf("Embed(%.40q): %v, want ErrNoKnownWords", c.text, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Embed(%.40q): %v", c.text, err)
			continue
		}
		if want := embedBrute(m, strings.Fields(c.words)); !closeVec(got, want, 1e-6) {
			t.Errorf("Embed(%.40q) = %v, want the mean of %q: %v", c.text, got, c.words, want)
		}
	}
}

func TestEmbedErrors(t *testing.T) {
	m := embTestModel(t)
	cases := []struct{ text, says string }{
		{"", "no words"},
		{"   \n\t ", "no words"},
		{"... !!! ???", "no words"},
		{"the of and it", "only stop words"},
		{"The OF, and!", "only stop words"},
		{"zzyzx qwerty", "in the vocabulary"},
		{"cat\x00dog", "binary"},
		{"\xff\xfe\xfd cat", "binary"},
		{"\x01\x02\x03\x04 cat", "binary"},
		{string([]byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d}), "binary"},
	}
	for _, c := range cases {
		_, err := m.Embed(c.text)
		if !errors.Is(err, ErrNoKnownWords) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Embed(%q): %v, want ErrNoKnownWords saying %q", c.text, err, c.says)
		}
	}
}

// TestEmbedWeighting: a frequent word weighs less than a rare one, by the
// ratio of their SIF weights.
func TestEmbedWeighting(t *testing.T) {
	const n = 1000
	words := make([]string, n)
	vecs := make([][]float32, n)
	for i := range words {
		words[i] = "w" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		vecs[i] = []float32{0, 0, 1}
	}
	vecs[0] = []float32{1, 0, 0}   // the most frequent word
	vecs[n-1] = []float32{0, 1, 0} // the rarest
	m, err := NewModel(words, vecs, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != n {
		t.Fatalf("test words collide: %d", m.Len())
	}
	v, err := m.Embed(words[0] + " " + words[n-1])
	if err != nil {
		t.Fatal(err)
	}
	if !(v[1] > 10*v[0]) || v[0] <= 0 {
		t.Fatalf("frequent %g vs rare %g: the rare word should dominate", v[0], v[1])
	}
	if got, want := float64(v[1]/v[0]), float64(m.weights[n-1]/m.weights[0]); math.Abs(got-want) > 1e-3*want {
		t.Fatalf("ratio %g, want the weights' ratio %g", got, want)
	}
	// Unranked: the same two words weigh the same.
	u, err := NewModel(words, vecs, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err = u.Embed(words[0] + " " + words[n-1])
	if err != nil || math.Abs(float64(v[0]-v[1])) > 1e-6 {
		t.Fatalf("unranked: %v %v, want equal weights", v, err)
	}
}

// TestEmbedMatchesBruteForce: random texts of known, stop, unknown and
// plural words embed as the brute-force mean of the words they resolve
// to, with the common component removed at 24 dimensions and not at 8, and
// the same text gives the same bits twice.
func TestEmbedMatchesBruteForce(t *testing.T) {
	for _, dim := range []int{8, 24} {
		t.Run(fmt.Sprintf("dim%d", dim), func(t *testing.T) {
			m := embTestModelDim(t, dim)
			if (m.common != nil) != (dim >= commonDimMin) {
				t.Fatalf("dimension %d: common direction %v", dim, m.common)
			}
			checkEmbedBrute(t, m)
		})
	}
}

func checkEmbedBrute(t *testing.T, m *Model) {
	known := []string{"cat", "dog", "king", "city", "box", "state", "owned", "bus", "run", "rare"}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(t, "n")
		var parts, want []string
		for range n {
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0:
				w := rapid.SampledFrom(known).Draw(t, "known")
				parts, want = append(parts, strings.ToUpper(w[:1])+w[1:]), append(want, w)
			case 1:
				parts = append(parts, rapid.SampledFrom([]string{"the", "and", "of", "it's", "The", "AND"}).Draw(t, "stop"))
			case 2:
				parts = append(parts, rapid.StringMatching(`q[xz]{2,6}`).Draw(t, "unknown"))
			case 3:
				w := rapid.SampledFrom([]string{"cat", "dog", "king", "rare"}).Draw(t, "plural")
				parts, want = append(parts, w+"s"), append(want, w)
			}
		}
		sep := rapid.SampledFrom([]string{" ", ", ", "\n", " -- "}).Draw(t, "sep")
		text := strings.Join(parts, sep)
		got, err := m.Embed(text)
		if len(want) == 0 {
			if !errors.Is(err, ErrNoKnownWords) {
				t.Fatalf("Embed(%q): %v, want ErrNoKnownWords", text, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Embed(%q): %v", text, err)
		}
		if w := embedBrute(m, want); !closeVec(got, w, 1e-5) {
			t.Fatalf("Embed(%q) = %v, want %v", text, got, w)
		}
		again, _ := m.Embed(text)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(again[i]) {
				t.Fatalf("Embed(%q) differs between calls", text)
			}
		}
	})
}

// TestEmbedAnyInput: whatever the bytes, Embed returns a unit vector or
// ErrNoKnownWords, and never panics.
func TestEmbedAnyInput(t *testing.T) {
	m := embTestModel(t)
	rapid.Check(t, func(t *rapid.T) {
		text := rapid.OneOf(
			rapid.String(),
			rapid.StringMatching(`(cat|dog|the|s|'|-|\x{2019}| |\x00|\xff|é){0,40}`),
			rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
		).Draw(t, "text")
		v, err := m.Embed(text)
		if err != nil {
			if !errors.Is(err, ErrNoKnownWords) {
				t.Fatalf("Embed(%q): unexpected error %v", text, err)
			}
			return
		}
		if n := dot(v, v); math.Abs(float64(n)-1) > 1e-5 {
			t.Fatalf("Embed(%q) not unit: %v", text, n)
		}
	})
}

// TestLooksBinaryMatchesBytes: looksBinary, which takes printable ASCII
// eight bytes at a time, answers as a loop over every byte does.
func TestLooksBinaryMatchesBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.OneOf(rapid.ByteRange(0x20, 0x7e), rapid.SampledFrom([]byte{0, 1, 9, 10, 12, 13, 0x1f, 0x7f, 0x80, 0xc3, 0xa9, 0xff})), 0, 80).Draw(t, "b")
		s := string(b)
		want := !utf8.ValidString(s)
		if !want {
			runes, controls := 0, 0
			for i := 0; i < len(s); i++ {
				c := s[i]
				if c&0xC0 != 0x80 {
					runes++
				}
				switch {
				case c == 0:
					want = true
				case c == '\t' || c == '\n' || c == '\r' || c == '\f':
				case c < 0x20 || c == 0x7f:
					controls++
				}
			}
			want = want || controls*binaryControlRatio > runes
		}
		if got := looksBinary(s); got != want {
			t.Fatalf("looksBinary(%q) = %v, want %v", s, got, want)
		}
	})
}

// TestASCIIWordBytes: the eight-byte test counts the leading bytes that
// asciiClass calls word bytes, whatever the bytes.
func TestASCIIWordBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.OneOf(rapid.Byte(), rapid.SampledFrom([]byte("azAZ09@[`{/:_-' \x80\xff"))), 8, 8).Draw(t, "b")
		want := 0
		for want < 8 && b[want] < utf8.RuneSelf && asciiClass[b[want]] == classWord {
			want++
		}
		if got := asciiWordBytes(string(b)); got != want {
			t.Fatalf("asciiWordBytes(%q) = %d, want %d", b, got, want)
		}
	})
	for c := range 256 {
		b := string([]byte{byte(c), 'a', 'a', 'a', 'a', 'a', 'a', 'a'})
		want := 0
		if c < utf8.RuneSelf && asciiClass[c] == classWord {
			want = 8
		}
		if got := asciiWordBytes(b); got != want {
			t.Fatalf("asciiWordBytes(%q) = %d, want %d", b, got, want)
		}
	}
}

// refNext is wordScanner.next as it was before it took eight bytes at a
// time: the reference TestScannerMatchesReference holds it to.
func (sc *wordScanner) refNext() (start, end int, ascii, ok bool) {
	s := sc.s
	if sc.n >= TextWordsMax {
		return 0, 0, false, false
	}
	i := sc.i
	size := 1
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiClass[c] == classWord {
				size = 1
				break
			}
			i++
			continue
		}
		var class uint8
		if class, size = classAt(s, i); class == classWord {
			break
		}
		i += size
	}
	if i >= len(s) {
		sc.i = len(s)
		return 0, 0, false, false
	}
	start, end, ascii = i, i+size, size == 1
	for end < len(s) {
		// Runs of ASCII letters and digits, the bulk of English text,
		// take a table lookup a byte.
		if c := s[end]; c < utf8.RuneSelf && asciiClass[c] == classWord {
			end++
			continue
		}
		class, size := classAt(s, end)
		if class == classWord {
			end += size
			ascii = false
			continue
		}
		if class == classJoiner && end+size < len(s) {
			if class2, size2 := classAt(s, end+size); class2 == classWord {
				ascii = ascii && size == 1 && size2 == 1
				end += size + size2
				continue
			}
		}
		break
	}
	if sc.wasCut && end == len(s) {
		sc.i = len(s)
		return 0, 0, false, false
	}
	sc.i = end
	sc.n++
	return start, end, ascii, true
}

// TestScannerMatchesReference: the scanner finds the same words as the
// byte-at-a-time scanner it replaced, in text of long ASCII runs, joiners,
// separators and non-ASCII letters.
func TestScannerMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		parts := rapid.SliceOfN(rapid.SampledFrom([]string{"abcdefghij", "Word", "x", "12345678", "don't", "state-owned", " ", "  ", ",", "-", "'", "é", "naïve", "日本", "\u2019", "QRSTUVWXYZabc", "\n"}), 0, 40).Draw(t, "parts")
		s := strings.Join(parts, "")
		a, b := wordScanner{s: s}, wordScanner{s: s}
		for {
			s1, e1, x1, ok1 := a.next()
			s2, e2, x2, ok2 := b.refNext()
			if s1 != s2 || e1 != e2 || x1 != x2 || ok1 != ok2 {
				t.Fatalf("%q: (%d %d %v %v), reference (%d %d %v %v)", s, s1, e1, x1, ok1, s2, e2, x2, ok2)
			}
			if !ok1 {
				break
			}
		}
	})
}

// TestEmbedCodesMatchVectors: the default model embeds from its int8
// codes; the result is the float32 vectors' within rounding.
func TestEmbedCodesMatchVectors(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if m.q8 == nil {
		t.Fatal("the default model has no codes")
	}
	plain := *m
	plain.q8, plain.wq = nil, nil
	c := newBenchCorpus(m)
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		text := c.text(r, 1+r.IntN(1500))
		a, errA := m.Embed(text)
		b, errB := plain.Embed(text)
		if (errA == nil) != (errB == nil) || !closeVec(a, b, 1e-5) {
			t.Fatalf("%q: codes %v %v, vectors %v %v", text, a, errA, b, errB)
		}
	}
}

// TestEmbedScan: EmbedScan returns Embed's vector (or error), bit for bit,
// and visits the words Tokenize reads, in order, each with the code
// WithWordCodes gave its vocabulary word (0 for an unknown or non-ASCII
// word); WithWordCodes leaves the model it copies without codes.
func TestEmbedScan(t *testing.T) {
	base := embTestModel(t)
	code := func(w string) uint64 { return uint64(len(w))<<8 | uint64(w[0]) }
	m := base.WithWordCodes(code)
	rapid.Check(t, func(t *rapid.T) {
		text := rapid.OneOf(
			rapid.String(),
			rapid.StringMatching(`(cat|Dog|THE|s|'|-|\x{2019}| |\t|\x00|\xff|é|zz|cat's|x-dog){0,40}`),
		).Draw(t, "text")
		var got []string
		v, err := m.EmbedScan(text, func(start, end int, c uint64) {
			w := text[start:end]
			got = append(got, normaliseWord(w))
			want := uint64(0)
			if id, ok := base.index[strings.ToLower(w)]; ok && isASCII(w) {
				want = code(base.words[id])
			}
			if c != want {
				t.Fatalf("%q: word %q has code %x, want %x", text, w, c, want)
			}
		})
		wantV, wantErr := base.Embed(text)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, Embed's %v", text, err, wantErr)
		}
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(wantV[i]) {
				t.Fatalf("%q: [%d] %v, Embed's %v", text, i, v[i], wantV[i])
			}
		}
		if looksBinary(cutText(text)) {
			if len(got) != 0 {
				t.Fatalf("%q looks binary but visited %q", text, got)
			}
			return
		}
		if want := Tokenize(text); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%q: visited %q, Tokenize %q", text, got, want)
		}
		base.embed(text, func(_, _ int, c uint64) {
			if c != 0 {
				t.Fatalf("the copied model has a code")
			}
		})
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

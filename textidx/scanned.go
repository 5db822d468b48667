package textidx

import (
	"dkv/internal/ascii"
	"unicode/utf8"
)

// A value is read by both of a node's indexes: this one analyses its words
// and the embedding model looks the same words up. Scanned lets the
// embedding's reading of a value (vecidx.Model.EmbedScan) serve both: it
// takes the words as the embedding finds them, each with a WordCode that
// the model's word table carries for it, so that a word of the model's
// vocabulary costs no tokenizing, lexicon lookup or stemming here. The Doc
// it makes is the one Analyze makes, bit for bit (the tests check it
// against Analyze on random text); where that could not be guaranteed
// cheaply, Start refuses and the caller analyses the value as usual.
//
// Why the words agree. Start takes only plain text: ASCII, with no
// control characters but tab, LF and CR. There, the embedding's words are
// maximal runs of letters and digits, joined by ' or - between two of
// them, and this package's words are such runs joined by ' (by its
// apostrophe rules), so each of our words lies inside one of the
// embedding's, and the bytes between the embedding's words hold no word
// character. A word of the embedding made of letters only, with a code, is
// one word here, lower-cased, whose fate (stop word, or its stem) the code
// holds; any other (digits, apostrophes, hyphens, unknown words) is read
// by the tokenizer, alone, which is what Analyze would make of it. The
// embedding reads at most a fixed number of words; the rest of the text,
// which starts between two words, is read by the tokenizer too.

// A WordCode is what analysis makes of a word of lower-case letters a–z,
// worked out once: bit 63 marks a code (0 is none), bit 62 a stop word,
// bits 56–61 keep and bits 48–55 the length of ending, bits 0–47 the
// ending's bytes: the word's term is its first keep bytes followed by
// ending.
const (
	wordCodeValid     = 1 << 63
	wordCodeStop      = 1 << 62
	wordCodeKeepShift = 56
	wordCodeEndShift  = 48
	wordCodeEndMax    = 6 // ending bytes a code holds
)

// WordCode is the code of word (see EmbedScan and Scanned), or 0 for a
// word that analysis must read as usual: one that is not lower-case
// letters a–z, is longer than the stemmer takes, or whose stem ends in
// more new bytes than a code holds.
func WordCode(word string) uint64 {
	if word == "" || len(word) > stemBytesMax || !allLowerASCII(word) {
		return 0
	}
	w := []byte(word)
	if isStopWord(w) {
		return wordCodeValid | wordCodeStop
	}
	s := stem(w) // may overwrite w: compare with word
	keep := 0
	for keep < len(s) && keep < len(word) && s[keep] == word[keep] {
		keep++
	}
	ending := s[keep:]
	if len(ending) > wordCodeEndMax {
		return 0
	}
	c := uint64(wordCodeValid) | uint64(keep)<<wordCodeKeepShift | uint64(len(ending))<<wordCodeEndShift
	for i, b := range ending {
		c |= uint64(b) << (8 * i)
	}
	return c
}

// Scanned builds a value's Doc from the words another scan of it finds:
// Start, then Word for each word in the text's order, then Doc. Its
// scratch space is inside it, so that one on the stack leaves only the Doc
// for the collector, as Analyze does. One goroutine uses one at a time.
type Scanned struct {
	text     string
	o        Options
	at       int // the end of the last word told
	position int
	arena    termArena
	stats    tokenizer // the counts isText needs, of everything read so far

	// The spans are spanArr[:nspans] until they outgrow it, then over.
	// (Holding a slice of its own array would make the compiler move a
	// Scanned to the heap.)
	nspans     int
	over       []wordSpan
	spanArr    [analyzeStackSpans]wordSpan
	scratchArr [analyzeStackScratch]uint64
	// tok is the tokenizer's buffer, on the heap: the tokenizer's word
	// would take a Scanned there with it.
	tok []byte
}

// Start begins the analysis of text with options o. It reports false, and
// the caller must use Analyze instead, unless text is plain: ASCII without
// control characters but tab, LF and CR, of at most textBytesMax bytes.
func (a *Scanned) Start(text string, o Options, textBytesMax int) bool {
	o.mustValidate()
	if len(text) > textBytesMax || !isPlain(text) {
		return false
	}
	a.text, a.o, a.at, a.position = text, o, 0, 0
	a.arena.n, a.arena.over = 0, nil
	a.nspans, a.over = 0, nil
	if want := len(text)/8 + 4; want > len(a.spanArr) {
		a.over = make([]wordSpan, 0, want)
	}
	a.stats = tokenizer{bytesMax: o.TokenBytesMax}
	a.tok = a.tok[:0]
	return true
}

// Word takes the next word, text[start:end], with the word code the
// embedding model's table holds for it (0 for none).
func (a *Scanned) Word(start, end int, code uint64) {
	text := a.text
	if start < a.at || end <= start || end > len(text) {
		panic("textidx: Scanned given words out of order")
	}
	a.gap(a.at, start)
	a.at = end
	n := end - start
	if code&wordCodeValid == 0 || n > a.o.TokenBytesMax {
		a.read(text[start:end])
		return
	}
	p := a.position
	a.position++
	a.stats.letters += n
	a.stats.nonSpace += n
	a.stats.words++
	a.stats.wordRunes += n
	if code&wordCodeStop != 0 {
		return
	}
	keep := int(code >> wordCodeKeepShift & 63)
	if keep > n {
		panic("textidx: a word code keeps more than the word")
	}
	w := text[start : start+keep]
	begin := a.arena.Len()
	termEnd := a.arena.term(w, code)
	a.addSpan(wordSpan{start: uint32(begin), end: uint32(termEnd), pos: uint32(p)})
}

// addSpan appends sp to the spans.
func (a *Scanned) addSpan(sp wordSpan) {
	if a.over == nil {
		if a.nspans < len(a.spanArr) {
			a.spanArr[a.nspans] = sp
			a.nspans++
			return
		}
		a.over = make([]wordSpan, 0, 2*len(a.spanArr))
		a.over = append(a.over, a.spanArr[:a.nspans]...)
	}
	a.over = append(a.over, sp)
}

// gap counts the bytes between two words, which in plain text hold no
// word character: what isText counts of them is their non-space bytes.
func (a *Scanned) gap(from, to int) {
	for i := from; i < to; i++ {
		switch asciiClass[a.text[i]] {
		case classSpace:
		case classLower, classUpper, classDigit:
			panic("textidx: Scanned skipped a word character")
		default:
			a.stats.nonSpace++
		}
	}
}

// read analyses s, a piece of the text that starts and ends between words
// of Analyze's, with the tokenizer, as Analyze would.
func (a *Scanned) read(s string) {
	tz := newTokenizer(s, a.o.TokenBytesMax, a.tok)
	for tz.next() {
		p := a.position
		a.position++
		if tz.long {
			continue
		}
		if head, ending, ok := tokenTerm(tz.tok, tz.stemmable); ok {
			start := a.arena.Len()
			a.arena.write(head)
			a.arena.writeString(ending)
			a.addSpan(wordSpan{start: uint32(start), end: uint32(a.arena.Len()), pos: uint32(p)})
		}
	}
	if cap(tz.tok) <= analyzerScratchMax {
		a.tok = tz.tok[:0]
	}
	a.stats.bad = a.stats.bad || tz.bad
	a.stats.letters += tz.letters
	a.stats.nonSpace += tz.nonSpace
	a.stats.words += tz.words
	a.stats.wordRunes += tz.wordRunes
}

// Doc ends the analysis: the rest of the text after the last word told is
// read with the tokenizer, and the Doc is what Analyze(text, o) returns.
func (a *Scanned) Doc() Doc {
	a.read(a.text[a.at:])
	a.at = len(a.text)
	if a.position > positionMax {
		panic("textidx: Scanned counted more words than plain text of its size holds")
	}
	d := Doc{}
	spans := a.over
	if spans == nil {
		spans = a.spanArr[:a.nspans]
	}
	if a.stats.isText() && len(spans) > 0 {
		d, _ = build(a.o, a.arena.String(), spans, a.scratchArr[:0])
		d.termsMax, d.positionsMax = uint32(a.o.TermsPerDocMax), uint32(a.o.PositionsPerTermMax)
	}
	return d
}

// termArena holds the terms of a Scanned analysis back to back: in arr
// until they outgrow it, then in over. The Doc gets them as one string of
// exactly their length, one allocation and a copy of some 600 bytes for
// 1 KB of English, where a strings.Builder had to guess its size and grew
// (a second allocation, and a copy) for about half of the values.
type termArena struct {
	n    int
	over []byte
	arr  [termArenaBytes]byte
}

// termArenaBytes holds the terms of some 2 KB of English.
const termArenaBytes = 1280

func (t *termArena) Len() int {
	if t.over != nil {
		return len(t.over)
	}
	return t.n
}

// room makes room for k more bytes in arr, or moves to over. (Copying
// arr into a new slice, never slicing it, keeps a Scanned off the heap.)
func (t *termArena) room(k int) bool {
	if t.over == nil && t.n+k <= len(t.arr) {
		return true
	}
	if t.over == nil {
		t.over = make([]byte, t.n, 2*len(t.arr)+k)
		copy(t.over, t.arr[:t.n])
	}
	return false
}

func (t *termArena) writeString(s string) {
	if t.room(len(s)) {
		t.n += copy(t.arr[t.n:], s)
	} else {
		t.over = append(t.over, s...)
	}
}

func (t *termArena) write(b []byte) {
	if t.room(len(b)) {
		t.n += copy(t.arr[t.n:], b)
	} else {
		t.over = append(t.over, b...)
	}
}

// term writes the term of a coded word w (letters, either case; w is its
// first keep bytes) and returns the arena's length after it.
func (t *termArena) term(w string, code uint64) int {
	endLen := int(code >> wordCodeEndShift & 0xff)
	if !t.room(len(w) + endLen) {
		for i := 0; i < len(w); i++ {
			t.over = append(t.over, w[i]|0x20) // a coded word's bytes are letters
		}
		for i := range endLen {
			t.over = append(t.over, byte(code>>(8*i)))
		}
		return len(t.over)
	}
	b := t.arr[t.n : t.n+len(w)+endLen]
	for i := 0; i < len(w); i++ {
		b[i] = w[i] | 0x20
	}
	for i := range endLen {
		b[len(w)+i] = byte(code >> (8 * i))
	}
	t.n += len(b)
	return t.n
}

// String is the terms, in one new string.
func (t *termArena) String() string {
	if t.over != nil {
		return string(t.over)
	}
	return string(t.arr[:t.n])
}

// isPlain reports whether s is ASCII with no control character but tab,
// LF and CR: where Scanned's words agree with Analyze's. Eight bytes of
// printable ASCII are tested at once.
func isPlain(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		if ascii.Printable8(ascii.Load8(b)) {
			continue
		}
		for j := range 8 {
			if !plainByte(b[j]) {
				return false
			}
		}
	}
	for ; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool {
	if c >= utf8.RuneSelf {
		return false
	}
	return asciiClass[c] != classCtrl
}

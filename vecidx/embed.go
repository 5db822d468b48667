package vecidx

import (
	"dkv/internal/ascii"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// TextBytesMax: Embed and Tokenize read only this much of a text (cut
	// back to a whole character, and to before a word the cut would split).
	TextBytesMax = 64 << 10
	// TextWordsMax: of that, only the first TextWordsMax words (stop words
	// and unknown words included) are read. A value's meaning for search is
	// in its first paragraphs; the bound keeps one Embed call's cost fixed.
	TextWordsMax = 1000
	// binaryControlRatio: a text in which more than one character in this
	// many is a control character (other than tab, newline, carriage
	// return, form feed) looks binary.
	binaryControlRatio = 10
)

// Embed returns the value vector of text: the SIF-weighted mean of its
// words' vectors (Arora, Liang and Ma 2017) with the model's common
// component removed, normalised to unit length. A word of rank r weighs
// a/(a+p) with a = 1e-3 and p = 1/(r·H(n)), Zipf's law standing in for the
// corpus frequencies the file does not carry (an unranked model weighs
// each word 1). A word that appears twice counts twice. The sum is taken
// in float32, word by word in the text's order, each product rounded
// before it is added, so the same text gives the same bits on every
// platform.
//
// The common component is the paper's second step: the vectors of a
// corpus's words share one direction, and a mean of a hundred words is
// mostly that direction (value vectors of 1 KB texts lay within 15° of
// each other), which both hides what a text is about and makes the
// nearest-neighbour graph slow and inexact. The paper takes the direction
// from the corpus being embedded; here a value is embedded alone, so the
// direction is a pure function of the model (Model.common): the expected
// weighted word vector of text that follows the model's Zipf frequencies.
// Models of fewer than commonDimMin dimensions keep the plain mean.
//
// Words are what Tokenize finds. Stop words (a fixed list of English
// function words) are skipped. A word outside the vocabulary is looked up
// again, in this order, and skipped if none matches:
//
//  1. a hyphenated word by its parts ("state-owned" → "state", "owned"),
//     each part by the rules below, stop-word parts skipped;
//  2. without a trailing "'s" ("king's" → "king");
//  3. without its apostrophes ("o'clock" → "oclock");
//  4. as a singular: "-ies" → "-y", then without "-es", then without "-s"
//     (words of four letters or more, not ending in "ss").
//
// Errors, all ErrNoKnownWords with the reason: a text that looks binary
// (not UTF-8, a NUL byte, or more than one control character in ten), a
// text with no words, a text of stop words only, no word in the
// vocabulary, or words whose vectors cancel out. Embed is a pure function
// of the model and the text; it allocates only the vector it returns (and
// strings for words outside the vocabulary).
func (m *Model) Embed(text string) ([]float32, error) { return m.embed(text, nil) }

// EmbedScan is Embed that also tells visit of every word it reads, in the
// text's order: text[start:end], and the code WithWordCodes gave it (0 for
// a word outside the vocabulary, a word with non-ASCII characters, or a
// model without codes). Stop words and unknown words
// are told too, and nothing else is; a text that looks binary is told
// nothing. So a caller that must read the same words (a full-text index)
// reads them here, at the cost of a call a word, instead of scanning the
// text and looking its words up again.
func (m *Model) EmbedScan(text string, visit func(start, end int, code uint64)) ([]float32, error) {
	if visit == nil {
		panic("vecidx: EmbedScan without a visitor")
	}
	return m.embed(text, visit)
}

func (m *Model) embed(text string, visit func(start, end int, code uint64)) ([]float32, error) {
	cut := cutText(text)
	if looksBinary(cut) {
		return nil, ErrLooksBinary
	}
	var sumArr [DimMax]float32
	sum := sumArr[:m.dim]
	var batchArr [embedBatch]wordRef
	var idsArr [2 * embedBatch]int32
	sc := wordScanner{s: cut, wasCut: len(cut) < len(text)}
	words, known, stops := 0, 0, 0
	for {
		// The words of a value are looked up a batch at a time, in passes
		// that each do one kind of memory access, so that the cache misses
		// of a pass overlap instead of following one another: the words
		// are read and hashed; their home slots in the word table loaded;
		// then the words are looked up and their ids gathered; then the
		// rows of those ids are touched, and summed in the text's order.
		batch := batchArr[:0]
		for len(batch) < embedBatch {
			start, end, ascii, ok := sc.next()
			if !ok {
				break
			}
			r := wordRef{start: int32(start), end: int32(end), ascii: ascii}
			if ascii {
				r.h, r.head, r.head2 = hashWord(cut, start, end, true)
			}
			batch = append(batch, r)
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			if r := &batch[i]; r.ascii {
				r.home = m.table.home(r.h)
			}
		}
		words += len(batch)
		ids := idsArr[:0]
		for i := range batch {
			r := &batch[i]
			// The common case, a word of the vocabulary, is one probe of
			// the word table on the text's own bytes (see wordTable),
			// which also says whether it is a stop word.
			var tok string
			var id int32
			var stop, found bool
			var code uint64
			if r.ascii {
				id, stop, code, found = m.table.probeCode(cut, int(r.start), int(r.end), true, r.h, r.head, r.head2, r.home)
			} else {
				tok = normaliseWord(cut[r.start:r.end])
				id, stop, found = m.table.find(tok, 0, len(tok), false)
			}
			if visit != nil {
				visit(int(r.start), int(r.end), code)
			}
			if found {
				if stop {
					stops++
					continue
				}
				ids = append(ids, id)
				continue
			}
			if r.ascii {
				tok = strings.ToLower(cut[r.start:r.end])
			}
			if stopWords[tok] {
				stops++
				continue
			}
			ids = m.resolveUnknown(tok, ids)
		}
		known += len(ids)
		if m.q8 != nil {
			m.touchCodes(ids)
			m.accumulateCodes(sum, ids)
		} else {
			m.touchRows(ids)
			m.accumulate(sum, ids)
		}
	}
	if words == 0 {
		return nil, fmt.Errorf("%w: the text has no words", ErrNoKnownWords)
	}
	if known == 0 {
		if stops == words {
			return nil, ErrOnlyStopWords
		}
		return nil, fmt.Errorf("%w: none of its %d words is in the vocabulary", ErrNoKnownWords, words-stops)
	}
	if m.common != nil {
		removeComponent(sum, m.common)
	}
	out := make([]float32, m.dim)
	if !unitInto32(out, sum) {
		return nil, fmt.Errorf("%w: its words' vectors cancel out", ErrNoKnownWords)
	}
	return out, nil
}

// embedBatch is the words Embed looks up together (see Embed).
const embedBatch = 64

// wordRef is a word Embed has read and not yet looked up: its place in
// the text and, for an ASCII word, its hash, heads and home slot.
type wordRef struct {
	start, end     int32
	ascii          bool
	h, head, head2 uint64
	home           wordSlot
}

// touchRows loads one value of every cache line of the rows and weights
// of ids, so that their misses overlap before accumulate reads them in
// turn. A model holds unit vectors and finite weights, so the sum of what
// it loads is finite: checking that keeps the loads (and the model)
// honest.
func (m *Model) touchRows(ids []int32) {
	const lineFloats = 16 // 64-byte lines
	var x float32
	for _, id := range ids {
		x += m.weights[id]
	}
	for _, id := range ids {
		row := m.row(int(id))
		for j := 0; j < len(row); j += lineFloats {
			x += row[j]
		}
		x += row[len(row)-1]
	}
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		panic("vecidx: a model vector is not finite")
	}
}

// accumulate adds the vectors of ids, times their weights, to sum, in
// order. Four words go through sum together: each component is loaded
// once, takes the four products in the words' order, and is stored once,
// which halves the instructions of adding them one word at a time and
// gives every component the same sum, bit for bit. The explicit
// conversions round each product, so that no platform fuses it into a
// multiply-add: the sum has the same bits everywhere.
func (m *Model) accumulate(sum []float32, ids []int32) {
	n := len(sum)
	i := 0
	for ; i+4 <= len(ids); i += 4 {
		w0, w1, w2, w3 := m.weights[ids[i]], m.weights[ids[i+1]], m.weights[ids[i+2]], m.weights[ids[i+3]]
		r0, r1, r2, r3 := m.row(int(ids[i]))[:n], m.row(int(ids[i+1]))[:n], m.row(int(ids[i+2]))[:n], m.row(int(ids[i+3]))[:n]
		for j := range sum {
			x := sum[j]
			x += float32(w0 * r0[j])
			x += float32(w1 * r1[j])
			x += float32(w2 * r2[j])
			x += float32(w3 * r3[j])
			sum[j] = x
		}
	}
	for ; i < len(ids); i++ {
		w, r := m.weights[ids[i]], m.row(int(ids[i]))[:n]
		for j := range sum {
			sum[j] += float32(w * r[j])
		}
	}
}

// touchCodes is touchRows for a model's int8 codes (see Model.q8): their
// weights, and one byte of every cache line of their codes. The weights
// are finite, and no sum of int8s is below -128 a byte: checking that
// keeps the loads.
func (m *Model) touchCodes(ids []int32) {
	const line = 64
	var x float32
	for _, id := range ids {
		x += m.wq[id]
	}
	y, loads := 0, 0
	for _, id := range ids {
		code := m.code(id)
		for j := 0; j < len(code); j += line {
			y += int(code[j])
			loads++
		}
		y += int(code[len(code)-1])
		loads++
	}
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) || y < -128*loads {
		panic("vecidx: a model weight is not finite")
	}
}

// code is word id's int8 code.
func (m *Model) code(id int32) []int8 {
	off := int(id) * m.q8Stride
	return m.q8[off : off+m.dim : off+m.dim]
}

// accumulateCodes is accumulate for a model's int8 codes: the vector of a
// word times its weight is wq·code, and each product is rounded as in
// accumulate, four words a pass over sum. A code byte becomes a float32
// through a table (an L1 load, where converting an integer took a
// conversion that waits on the register it writes).
func (m *Model) accumulateCodes(sum []float32, ids []int32) {
	n := len(sum)
	f := &int8Floats
	i := 0
	for ; i+4 <= len(ids); i += 4 {
		w0, w1, w2, w3 := m.wq[ids[i]], m.wq[ids[i+1]], m.wq[ids[i+2]], m.wq[ids[i+3]]
		c0, c1, c2, c3 := m.code(ids[i])[:n], m.code(ids[i+1])[:n], m.code(ids[i+2])[:n], m.code(ids[i+3])[:n]
		for j := range sum {
			x := sum[j]
			x += float32(w0 * f[uint8(c0[j])])
			x += float32(w1 * f[uint8(c1[j])])
			x += float32(w2 * f[uint8(c2[j])])
			x += float32(w3 * f[uint8(c3[j])])
			sum[j] = x
		}
	}
	for ; i < len(ids); i++ {
		w, c := m.wq[ids[i]], m.code(ids[i])[:n]
		for j := range sum {
			sum[j] += float32(w * f[uint8(c[j])])
		}
	}
}

// int8Floats maps a code byte to its value as a float32.
var int8Floats = func() (t [256]float32) {
	for b := range 256 {
		t[b] = float32(int8(b))
	}
	return t
}()

// removeComponent subtracts from v its projection on the unit vector u.
func removeComponent(v, u []float32) {
	u = u[:len(v)]
	var p float32
	for j, f := range v {
		p += float32(f * u[j])
	}
	for j, f := range u {
		v[j] -= float32(p * f)
	}
}

// unitInto32 writes src scaled to length one into dst; false when src has
// length zero or is not finite (dst is then untouched). The norm is summed
// in float64, where the squares of float32 values are exact and cannot
// overflow.
func unitInto32(dst, src []float32) bool {
	if len(dst) != len(src) {
		panic("vecidx: unitInto32 with different lengths")
	}
	ss := 0.0
	for _, f := range src {
		x := float64(f)
		ss += x * x // exact: a float32 squared fits a float64, so nothing fuses
	}
	if ss == 0 || math.IsInf(ss, 0) || math.IsNaN(ss) {
		return false
	}
	inv := 1 / math.Sqrt(ss)
	for i, f := range src {
		dst[i] = float32(float64(f) * inv)
	}
	return true
}

// resolveUnknown appends the vocabulary ids that tok, a word outside the
// vocabulary and not a stop word, stands for under Embed's fallback rules:
// none, one, or one per part of a hyphenated word.
func (m *Model) resolveUnknown(tok string, dst []int32) []int32 {
	if strings.Contains(tok, "-") {
		for part := range strings.SplitSeq(tok, "-") {
			if !stopWords[part] {
				dst = m.resolveWord(part, dst)
			}
		}
		return dst
	}
	return m.resolveWord(tok, dst)
}

func (m *Model) resolveWord(w string, dst []int32) []int32 {
	if i, ok := m.index[w]; ok {
		return append(dst, i)
	}
	if s, ok := strings.CutSuffix(w, "'s"); ok {
		if i, ok := m.index[s]; ok {
			return append(dst, i)
		}
		w = s
	}
	if strings.Contains(w, "'") {
		w = strings.ReplaceAll(w, "'", "")
		if i, ok := m.index[w]; ok {
			return append(dst, i)
		}
	}
	if len(w) >= 4 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
		for _, c := range [...]struct{ cut, add string }{{"ies", "y"}, {"es", ""}, {"s", ""}} {
			if s, ok := strings.CutSuffix(w, c.cut); ok {
				if i, ok := m.index[s+c.add]; ok {
					return append(dst, i)
				}
			}
		}
	}
	return dst
}

// Tokenize returns the words Embed reads from text, lower-cased: maximal
// runs of letters, digits and combining marks, with an apostrophe (' or ’,
// kept as ') or a hyphen inside a run joining it ("don't", "state-owned").
// Other characters separate words. Only the first TextBytesMax bytes and
// TextWordsMax words are read.
func Tokenize(text string) []string {
	cut := cutText(text)
	sc := wordScanner{s: cut, wasCut: len(cut) < len(text)}
	var out []string
	for {
		start, end, _, ok := sc.next()
		if !ok {
			return out
		}
		out = append(out, normaliseWord(cut[start:end]))
	}
}

// cutText returns text's first TextBytesMax bytes, cut back to a whole
// character.
func cutText(text string) string {
	if len(text) <= TextBytesMax {
		return text
	}
	n := TextBytesMax
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n]
}

// Character classes of the tokenizer.
const (
	classOther  = iota // separates words
	classWord          // letter, digit or combining mark
	classJoiner        // ' ’ or -: joins two runs of word characters
)

// asciiClass classifies the ASCII characters without decoding them.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range utf8.RuneSelf {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			t[c] = classWord
		case c == '\'' || c == '-':
			t[c] = classJoiner
		}
	}
	return t
}()

// classAt is the class and byte length of the character at s[i].
func classAt(s string, i int) (class uint8, size int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
		return classWord, size
	case r == '\u2019':
		return classJoiner, size
	}
	return classOther, size
}

// wordScanner yields the words of s, as written (not lower-cased), at most
// TextWordsMax of them. When s was cut from a longer text, a word running
// into the cut is dropped, being possibly a fragment.
type wordScanner struct {
	s      string
	wasCut bool
	i      int // where the next word's search starts
	n      int // words yielded
}

// next returns the next word as s[start:end], and whether it is all
// ASCII; ok is false at the end.
func (sc *wordScanner) next() (start, end int, ascii, ok bool) {
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
		// Runs of ASCII letters and digits, the bulk of English text, go
		// eight bytes at a time, and the rest of a run a table lookup a
		// byte.
		if end+8 <= len(s) {
			if n := asciiWordBytes(s[end : end+8]); n == 8 {
				end += 8
				continue
			} else {
				end += n
			}
		}
		if end >= len(s) {
			break
		}
		if c := s[end]; c < utf8.RuneSelf {
			switch asciiClass[c] {
			case classWord:
				end++
				continue
			case classOther: // a space, most often: the word ends
				goto done
			}
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
done:
	if sc.wasCut && end == len(s) {
		sc.i = len(s)
		return 0, 0, false, false
	}
	sc.i = end
	sc.n++
	return start, end, ascii, true
}

// asciiWordBytes is how many of the 8 bytes of b, from the first, are
// ASCII letters or digits (asciiClass's classWord). It tests all eight at
// once: a byte's high bit is set in letter (digit) when, with the high
// bit cleared and case folded, adding 0x80-'a' carries into it and adding
// 0x80-'z'-1 does not; no sum carries out of its byte.
func asciiWordBytes(b string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := ascii.Load8(b)
	y := x &^ highs
	folded := y | 0x20*ones
	letter := (folded + (0x80-'a')*ones) &^ (folded + (0x80-'z'-1)*ones)
	digit := (y + (0x80-'0')*ones) &^ (y + (0x80-'9'-1)*ones)
	word := (letter | digit) &^ x & highs
	return bits.TrailingZeros64(^word&highs) / 8
}

func normaliseWord(w string) string {
	w = strings.ToLower(w)
	if strings.ContainsRune(w, '\u2019') {
		w = strings.ReplaceAll(w, "\u2019", "'")
	}
	return w
}

// looksBinary: s is not UTF-8, holds a NUL, or more than one character in
// binaryControlRatio is a control character. The control characters
// counted (below 0x20 but tab, newline, carriage return and form feed; and
// DEL) are all single bytes, so a byte loop counts them, and characters
// are the bytes that do not continue one. Eight bytes of printable ASCII
// (the bulk of text) are counted as eight characters at once.
func looksBinary(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	runes, controls := 0, 0
	i := 0
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		if ascii.Printable8(ascii.Load8(b)) {
			runes += 8
			continue
		}
		for j := range 8 {
			if binaryByte(b[j], &runes, &controls) {
				return true
			}
		}
	}
	for ; i < len(s); i++ {
		if binaryByte(s[i], &runes, &controls) {
			return true
		}
	}
	return controls*binaryControlRatio > runes
}

// binaryByte counts c for looksBinary, and reports a NUL.
func binaryByte(c byte, runes, controls *int) bool {
	if c&0xC0 != 0x80 {
		*runes++
	}
	switch {
	case c == 0:
		return true
	case c == '\t' || c == '\n' || c == '\r' || c == '\f':
	case c < 0x20 || c == 0x7f:
		*controls++
	}
	return false
}

// stopWordList are English function words, which carry little of what a text
// is about; SIF would give the frequent ones tiny weights anyway, and
// skipping them lets a text of only such words be refused clearly.
var stopWordList = strings.Fields(`a about above after again against all also am an and any are
	aren't as at be because been before being below between both but by can
	can't cannot could couldn't did didn't do does doesn't doing don't down
	during each few for from further had hadn't has hasn't have haven't having
	he he'd he'll he's her here here's hers herself him himself his how how's
	i i'd i'll i'm i've if in into is isn't it it's its itself let's may me
	might more most must mustn't my myself no nor not of off on once only or
	other ought our ours ourselves out over own same shall shan't she she'd
	she'll she's should shouldn't so some such than that that's the their
	theirs them themselves then there there's these they they'd they'll
	they're they've this those through to too under until up upon us very was
	wasn't we we'd we'll we're we've were weren't what what's when when's
	where where's which while who who's whom why why's will with won't would
	wouldn't you you'd you'll you're you've your yours yourself yourselves`)

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range stopWordList {
		m[w] = true
	}
	return m
}()

package textidx

import (
	"dkv/internal/ascii"
	"strings"
)

// Doc is an analysed value: its distinct terms (stemmed words that are not
// stop words), how often each occurs, the positions of the first ones, and
// its length. Only Analyze makes one; the zero Doc is an empty value, which
// matches nothing. A Doc does not change once made, so one may be handed
// from the goroutine that analysed it to the one that owns the Index.
//
// The distinct terms are ordered by hashes[i]>>32, then first occurrence.
// A Doc holds no pointer per term (no string headers), so that the
// collector scans little of it, and its frequencies and positions lie in
// fwd in the layout of an Index's forward index (forward), so that the
// first Index to take the Doc keeps fwd as it is instead of copying it
// (see Put).
type Doc struct {
	text   string   // the analysed words' terms, back to back
	hb     []uint64 // hashes (n), then each term's bounds in text (n): start<<32 | end
	hashes []uint64 // hb[:n]: hashes[i] is termHash(term(i))
	fwd    []uint32 // the forward index, its ids left for the Index, then a taken flag
	narrow bool     // fwd's layout
	length uint32   // Σ freqs: the document length |D| of BM25

	// The limits it was analysed with, checked by Put against the index's.
	termsMax, positionsMax uint32
}

// Len returns the document's length: the number of its words that were
// indexed (stop words, skipped words and terms over TermsPerDocMax excluded).
func (d Doc) Len() int { return int(d.length) }

// nterms is the number of distinct terms.
func (d Doc) nterms() int { return len(d.hashes) }

// forward is the view of the Doc's forward index.
func (d Doc) forward() forward { return forward{data: d.fwd, n: d.nterms(), narrow: d.narrow} }

// term is the i-th distinct term.
func (d Doc) term(i int) string {
	b := d.hb[len(d.hashes)+i]
	return d.text[b>>32 : uint32(b)]
}

// Terms returns the distinct terms, in an order fixed by their hashes.
func (d Doc) Terms() []string {
	var out []string
	for i := range d.nterms() {
		out = append(out, d.term(i))
	}
	return out
}

// Freq returns how often term occurs.
func (d Doc) Freq(term string) int {
	for i := range d.nterms() {
		if d.term(i) == term {
			return int(d.forward().freq(i))
		}
	}
	return 0
}

// Positions returns the kept positions of term: word positions in the text,
// counting from 0, where stop words and skipped words count too.
func (d Doc) Positions(term string) []int {
	var out []int
	f := d.forward()
	for i := range d.nterms() {
		if d.term(i) == term {
			for k := f.start(i); k < f.start(i+1); k++ {
				out = append(out, int(f.pos(k)))
			}
		}
	}
	return out
}

// wordSpan is one indexed word during analysis: its term's bytes in the
// arena, its position, and then which term it is.
type wordSpan struct {
	start, end uint32 // bytes of the term in the arena
	pos        uint32
	term       int32 // the Doc's term number, or -1 if over TermsPerDocMax
}

// positionMax bounds word positions so they fit in uint32 with room.
const positionMax = 1<<31 - 1

// Analyze turns a value into a Doc: it splits the text into words, lower-
// cases them, drops stop words and stems the rest. A value that is not text
// (see isText) is an empty Doc. It is a pure function: safe to call from any
// goroutine, with no state shared between calls. Its scratch space lives on
// the calling goroutine's stack for values of up to about 1.5 KB of
// English, so that it leaves only the Doc for the garbage collector (a
// node analyses every value it writes, and with its indexes' tens of
// megabytes of live data every collection is dear).
func Analyze(text string, o Options) Doc {
	o.mustValidate()
	var spans [analyzeStackSpans]wordSpan
	var scratch [analyzeStackScratch]uint64
	d, _, _, _ := analyze(text, o, nil, spans[:0], scratch[:0])
	return d
}

// The scratch Analyze keeps on the stack: spans for 192 indexed words
// (some 1.8 KB of English), and build's scratch for as many (a table of
// 512 and 4 words a span). Larger values grow it on the heap.
const (
	analyzeStackSpans   = 192
	analyzeStackScratch = 512 + 4*analyzeStackSpans
)

// Analyzer analyses values like Analyze, keeping its scratch space from one
// value to the next. One goroutine uses one Analyzer at a time (a host keeps
// one per connection); the Docs it returns share nothing with it.
type Analyzer struct {
	o       Options
	tok     []byte
	spans   []wordSpan
	scratch []uint64
}

// NewAnalyzer returns an Analyzer for o. It panics if o is not valid.
func NewAnalyzer(o Options) *Analyzer {
	o.mustValidate()
	return &Analyzer{o: o}
}

// analyzerScratchMax bounds the scratch an Analyzer keeps between values,
// so that one huge value does not pin its scratch for good.
const analyzerScratchMax = 1 << 16

// Analyze turns text into a Doc (see the function Analyze).
func (a *Analyzer) Analyze(text string) Doc {
	a.o.mustValidate()
	d, tok, spans, scratch := analyze(text, a.o, a.tok, a.spans, a.scratch)
	if cap(spans) <= analyzerScratchMax {
		a.spans = spans
	}
	if cap(tok) <= analyzerScratchMax {
		a.tok = tok
	}
	if cap(scratch) <= analyzerScratchMax {
		a.scratch = scratch
	}
	return d
}

// analyze is Analyze with the given scratch space, which it returns, grown
// where it had to.
func analyze(text string, o Options, tok []byte, spans []wordSpan, scratch []uint64) (Doc, []byte, []wordSpan, []uint64) {

	// The arena holds every indexed word's term back to back; it becomes
	// one string (strings.Builder hands over its buffer without a copy), and
	// the terms are substrings of it, so a Doc costs a few allocations
	// however many words it has.
	var arena strings.Builder
	arena.Grow(len(text)*5/8 + 16) // the terms of English are about half its bytes; rarely more
	if want := len(text)/8 + 4; cap(spans) < want {
		spans = make([]wordSpan, 0, want) // a guess that fits English; append grows it
	}
	if tok == nil {
		tok = make([]byte, 0, 32)
	}
	tz := newTokenizer(text, o.TokenBytesMax, tok)
	spans = spans[:0]
	position := 0
	for tz.next() {
		p := position
		position++
		if position > positionMax {
			break
		}
		if tz.long {
			continue
		}
		if head, ending, ok := tokenTerm(tz.tok, tz.stemmable); ok {
			start := arena.Len()
			arena.Write(head)
			arena.WriteString(ending)
			spans = append(spans, wordSpan{start: uint32(start), end: uint32(arena.Len()), pos: uint32(p)})
		}
	}
	d := Doc{}
	if tz.isText() && len(spans) > 0 {
		d, scratch = build(o, arena.String(), spans, scratch)
		d.termsMax, d.positionsMax = uint32(o.TermsPerDocMax), uint32(o.PositionsPerTermMax)
	}
	return d, tz.tok, spans, scratch
}

// tokenTerm is what analysis makes of the lower-cased token w: nothing
// for a stop word (ok false), else the term head+ending (w stemmed when
// stemmable, which only ASCII letters are). Both of Analyze's paths (its
// own tokenizer, and the words an embedding's scan hands to Scanned) turn
// tokens into terms here, so they cannot differ in what a token becomes.
// It may overwrite w (stemming in place).
func tokenTerm(w []byte, stemmable bool) (head []byte, ending string, ok bool) {
	if stemmable && lexicon != nil {
		if stop, keep, ending, ok := lexicon.find(w); ok {
			if stop {
				return nil, "", false
			}
			return w[:keep], ending, true
		}
	}
	if isStopWord(w) {
		return nil, "", false
	}
	if stemmable {
		w = stem(w)
	}
	return w, "", true
}

// build gathers the spans of an analysed text into a Doc, with the given
// scratch space, which it returns, grown if it had to.
func build(o Options, s string, spans []wordSpan, scratch []uint64) (Doc, []uint64) {
	// Scratch in one allocation: the open-addressing table that finds
	// distinct terms (1 + the index of a term's first span), then per term
	// (in order of first occurrence) its hash, its first span, and the
	// sort keys. The table holds the kept terms only, at most
	// TermsPerDocMax, so the scratch is bounded by that and not by the
	// words: sized by the words, a value of 1 MiB of one short word
	// repeated took 19 MB of scratch for its one term (found by review).
	terms := min(len(spans), o.TermsPerDocMax)
	size := 16
	for size < 2*terms {
		size *= 2
	}
	need := size + 4*terms
	if cap(scratch) < need {
		scratch = make([]uint64, need)
	}
	scratch = scratch[:need]
	clear(scratch[:size]) // the table; the rest is written before it is read
	table := scratch[:size]
	hashes := scratch[size : size : size+terms]
	firsts := scratch[size+terms : size+terms : size+2*terms]
	order := scratch[size+2*terms : size+3*terms]
	sorted := scratch[size+3*terms:]
	mask := uint64(size - 1)
	for i := range spans {
		sp := &spans[i]
		t := s[sp.start:sp.end]
		h := termHash(t)
		for j := h & mask; ; j = (j + 1) & mask {
			k := table[j]
			if k == 0 {
				// A new term: kept while there is room, and then looked
				// up here again at each of its words, in a table at most
				// half full, and dropped each time.
				sp.term = -1
				if len(hashes) < o.TermsPerDocMax {
					sp.term = int32(len(hashes))
					hashes = append(hashes, h)
					firsts = append(firsts, uint64(i))
					table[j] = uint64(i + 1)
				}
				break
			}
			if first := spans[k-1]; s[first.start:first.end] == t {
				sp.term = first.term
				break
			}
		}
	}

	// The Doc keeps its terms sorted by the high half of their hash (then
	// by first occurrence): the index stores a document's terms in this
	// order and finds one by binary search, so Put need not sort.
	n := len(hashes)
	order = order[:n]
	for i, h := range hashes {
		order[i] = h>>32<<32 | uint64(i)
	}
	order = sortKeys(order, sorted[:n])
	rank := table[:n] // reuse: rank[first-occurrence index] = place in the Doc
	// The hashes and bounds in one allocation, and the forward index in
	// another, made once the number of kept positions is known.
	var d Doc
	d.text = s
	d.hb = make([]uint64, 2*n)
	d.hashes = d.hb[:n:n]
	for place, key := range order {
		i := uint32(key)
		rank[i] = uint64(place)
		d.hashes[place] = hashes[i]
	}
	for i, first := range firsts {
		sp := spans[first]
		d.hb[n+int(rank[i])] = uint64(sp.start)<<32 | uint64(sp.end)
	}
	freqs := order[:n] // reuse: counted here, copied below
	clear(freqs)
	for i := range spans {
		sp := &spans[i]
		if sp.term >= 0 {
			sp.term = int32(rank[sp.term])
			freqs[sp.term]++
		}
	}
	kept := 0
	for _, f := range freqs {
		kept += int(min(f, uint64(o.PositionsPerTermMax)))
		d.length += uint32(f)
	}
	// Spans come in the text's order: the last is at the highest position.
	d.narrow = len(spans) < narrowWordsMax && spans[len(spans)-1].pos < narrowWordsMax
	words := forwardWords(n, kept, d.narrow)
	d.fwd = make([]uint32, words+1) // and the taken flag
	f := d.forward()
	at := 0
	for i, fr := range freqs {
		f.set(i, d.hashes[i], uint32(fr), at)
		at += int(min(fr, uint64(o.PositionsPerTermMax)))
	}
	f.setStart(n, at)
	// Fill positions, counting each term's occurrences from zero.
	seen := table[:n] // reuse: rank is read no more
	clear(seen)
	for _, sp := range spans {
		if sp.term < 0 {
			continue
		}
		c := seen[sp.term]
		if c < uint64(o.PositionsPerTermMax) {
			f.setPos(f.start(int(sp.term))+int(c), sp.pos)
		}
		seen[sp.term] = c + 1
	}
	return d, scratch
}

// sortKeys sorts keys whose high bits are uniform hashes: a counting pass
// on the top byte scatters them into out nearly sorted, and an insertion
// sort finishes within buckets. O(n) for the ~100 terms of a 1 KB value,
// where a general sort costs a few microseconds.
func sortKeys(keys, out []uint64) []uint64 {
	var counts [257]uint32
	for _, k := range keys {
		counts[k>>56+1]++
	}
	for b := 1; b < len(counts); b++ {
		counts[b] += counts[b-1]
	}
	for _, k := range keys {
		b := k >> 56
		out[counts[b]] = k
		counts[b]++
	}
	for i := 1; i < len(out); i++ {
		k := out[i]
		j := i
		for ; j > 0 && out[j-1] > k; j-- {
			out[j] = out[j-1]
		}
		out[j] = k
	}
	return out
}

// termHash hashes a term 8 bytes at a time (a multiply and a shift per
// word, where FNV-1a took a multiply a byte) and mixes the result, so that
// both halves are well spread: the low bits pick dictionary slots, the
// high bits order a Doc.
func termHash(w string) uint64 {
	h := uint64(len(w)) * 0x9e3779b97f4a7c15
	for i := 0; i < len(w); i += 8 {
		var x uint64
		if i+8 <= len(w) {
			b := w[i : i+8]
			x = ascii.Load8(b)
		} else {
			for j := len(w) - 1; j >= i; j-- {
				x = x<<8 | uint64(w[j])
			}
		}
		h ^= x
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

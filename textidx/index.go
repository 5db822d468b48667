package textidx

import (
	"fmt"
	"strings"
	"unsafe"
)

// posting says that a document holds a term, and how often.
type posting struct {
	doc  uint32
	freq uint32
}

// termEntry is one term of the dictionary and its postings, in the order
// the documents were put (ids are reused, so not sorted by id). Postings
// whose document was removed stay until they outnumber the live ones; then
// compact drops them all in one pass, so a removal costs O(1) per term
// amortised instead of a search through a list that may hold every document.
type termEntry struct {
	text string
	// tail is the newest postings, all of them while the list is short
	// (postings.go); n counts the postings, dead the dead among them.
	tail []posting
	n    uint32
	dead uint32
	// hash is the low half of termHash(text): the dictionary holds the
	// high half in the term's slot, and places it by the low half.
	hash uint32
	// head holds the text's first bytes, so that the dictionary confirms
	// a match without following text's pointer to memory that is rarely
	// in cache (most English stems are no longer than headBytes).
	head [headBytes]byte
}

// headBytes makes a termEntry exactly 64 bytes on 64-bit machines: one
// cache line (TestTermEntrySize).
const headBytes = 12

func newTermEntry(text string, hash uint64) termEntry {
	te := termEntry{text: text, hash: uint32(hash)}
	copy(te.head[:], text)
	return te
}

// is reports whether the entry's term is t, whose hash is h (the
// dictionary has matched its high half).
func (te *termEntry) is(t string, h uint64) bool {
	if te.hash != uint32(h) || len(te.text) != len(t) {
		return false
	}
	if len(t) <= headBytes {
		return string(te.head[:len(t)]) == t
	}
	return string(te.head[:]) == t[:headBytes] && te.text[headBytes:] == t[headBytes:]
}

// live returns the number of live documents holding the term: its n(q).
func (t *termEntry) live() int { return int(t.n - t.dead) }

// docEntry is one document id. While live it holds the key and the
// document's forward index; once dead it waits, holding nothing, until the
// last posting naming it is compacted away, and only then is the id reused:
// so a posting always names either its own live document or a dead id.
type docEntry struct {
	key    string
	data   []uint32 // the forward index of a live document (see forward)
	n      uint32   // distinct terms
	length uint32   // |D|
	refs   uint32   // while dead: postings that still name this id
	narrow bool     // data's layout
}

// forward is the view of the document's forward index.
func (d *docEntry) forward() forward { return forward{data: d.data, n: int(d.n), narrow: d.narrow} }

// Index is an inverted index over the store's values with BM25 ranking. It
// is node logic: one goroutine (the node's) owns it, and the same calls in
// the same order give the same state and the same results.
type Index struct {
	opts Options

	keys  map[string]uint32 // key → live document id
	dict  dictionary        // term → term id; every term in it has a live posting
	terms []termEntry
	// chunks[tid] is the full chunks of term tid's postings, oldest
	// first, for the terms that have any; chunksFree the chunks no list
	// uses (postings.go).
	chunks     map[uint32][]postingChunk
	chunksFree []postingChunk
	chunkLen   int // chunkPostings but in tests
	docs       []docEntry
	// live has bit id set while document id is live. Compaction and
	// search test it for every posting they walk: a bitmap of 100,000
	// documents is 12.5 KB and stays in cache, where the documents do not.
	live []uint64
	// lengths[id] is document id's |D| (0 once dead), apart from docs for
	// the same reason: Any mode reads it for every posting it scores.
	lengths []uint32

	termsFree []uint32 // term ids to reuse, last freed first
	docsFree  []uint32 // document ids to reuse, last freed first

	docsLive     int
	lengthTotal  uint64 // Σ |D| over live documents
	postingsLive int64

	// Memory accounting for Stats.Bytes.
	postingSlots int64 // posting slots held: of lists, chunks and free chunks
	dataWords    int64 // Σ cap(docEntry.data)
	textBytes    int64 // bytes of keys and term texts held

	sink        uint32   // where touch loops leave what they load, so it is loaded
	analyzer    Analyzer // for Set
	search      searchScratch
	allStrategy allStrategy // allAuto but in tests, which make each strategy run
}

// New returns an empty index. It panics if o is not valid (see Validate).
func New(o Options) *Index {
	o.mustValidate()
	x := &Index{opts: o, chunkLen: chunkPostings}
	x.Reset()
	return x
}

// Options returns the options the index was made with: a host analyses
// values with these.
func (x *Index) Options() Options { return x.opts }

// Reset forgets every document, as when the store is replaced by a snapshot.
func (x *Index) Reset() {
	*x = Index{
		opts:        x.opts,
		keys:        map[string]uint32{},
		chunks:      map[uint32][]postingChunk{},
		chunkLen:    x.chunkLen,
		allStrategy: x.allStrategy,
		analyzer:    Analyzer{o: x.opts},
	}
}

// Len returns the number of indexed documents: keys whose value has at least
// one indexed term (an empty or non-text value is not held).
func (x *Index) Len() int { return x.docsLive }

// Set indexes text as key's value.
func (x *Index) Set(key, text string) { x.Put(key, x.analyzer.Analyze(text)) }

// Put makes d the indexed value of key, replacing any earlier one. An empty
// Doc removes key. It panics if d was analysed with larger limits than the
// index's: the host must analyse with the index's Options. The first Put of
// a Doc keeps its forward array and marks it taken, so one Doc must not be
// Put into Indexes on two goroutines at once (in turn, or on one, is fine).
func (x *Index) Put(key string, d Doc) {
	x.checkDoc(d)
	old, had := x.keys[key]
	k := ""
	if had {
		k = x.docs[old].key // already our own copy
		x.kill(old)
	}
	if d.nterms() == 0 {
		if had {
			delete(x.keys, k)
			x.textBytes -= int64(len(k))
		}
		return
	}
	if !had {
		// Our own copy: the host's key may share a large request buffer.
		k = strings.Clone(key)
		x.textBytes += int64(len(k))
	}

	id := x.allocDoc()
	n := d.nterms()
	// The forward index keeps the Doc's order (by hash), so no sort here,
	// and the Doc's own layout: the first Index to take a Doc keeps its
	// array (and marks it taken), any other copies it.
	df := d.forward()
	words := forwardWords(n, df.start(n), d.narrow)
	var data []uint32
	if taken := &d.fwd[words]; *taken == 0 {
		*taken = 1
		data = d.fwd[:words:words]
	} else {
		data = make([]uint32, words)
		copy(data, d.fwd[:words])
	}
	f := forward{data: data, n: n, narrow: d.narrow}
	// Four passes instead of one: the work is cache misses (dictionary
	// slot, term entry, end of the postings list, each somewhere in a large
	// index), and a pass that only loads lets the processor overlap many
	// of one kind, where the full loop body overlaps a few.
	x.sink += uint32(x.dict.touch(d.hashes))
	x.sink += uint32(x.dict.touchTerms(d.hashes, x.terms))
	ids := f.ids()
	for i, h := range d.hashes {
		ids[i] = x.termID(d.term(i), h)
	}
	x.touchTails(ids)
	for i, tid := range ids {
		x.appendPosting(tid, posting{doc: id, freq: f.freq(i)})
	}

	x.docs[id] = docEntry{key: k, data: data, n: uint32(n), length: d.length, narrow: d.narrow}
	x.live[id/64] |= 1 << (id % 64)
	x.lengths[id] = d.length
	x.keys[k] = id
	x.docsLive++
	x.lengthTotal += uint64(d.length)
	x.postingsLive += int64(n)
	x.dataWords += int64(cap(data))
}

// checkDoc asserts what Put relies on: a Doc analysed within the index's
// limits, whose parts agree in length. (Analyze's tests check the rest of
// a Doc's shape; a Doc cannot be made elsewhere.)
func (x *Index) checkDoc(d Doc) {
	if int(d.termsMax) > x.opts.TermsPerDocMax || int(d.positionsMax) > x.opts.PositionsPerTermMax {
		panic(fmt.Sprintf("textidx: Doc analysed with TermsPerDocMax %d and PositionsPerTermMax %d, over the index's %d and %d: analyse with Index.Options",
			d.termsMax, d.positionsMax, x.opts.TermsPerDocMax, x.opts.PositionsPerTermMax))
	}
	n := d.nterms()
	if n == 0 {
		return
	}
	if len(d.hb) != 2*n || len(d.fwd) != forwardWords(n, d.forward().start(n), d.narrow)+1 {
		panic("textidx: Doc parts disagree (a Doc must come from Analyze)")
	}
}

// touchTails loads the slot where each term's next posting goes.
func (x *Index) touchTails(tids []uint32) {
	sink := uint32(0)
	for _, tid := range tids {
		ps := x.terms[tid].tail
		if len(ps) < cap(ps) {
			sink += ps[:len(ps)+1][len(ps)].doc
		}
	}
	x.sink += sink
}

// Remove forgets key's value; it does nothing if key is not indexed.
func (x *Index) Remove(key string) {
	id, ok := x.keys[key]
	if !ok {
		return
	}
	k := x.docs[id].key
	x.kill(id)
	delete(x.keys, k)
	x.textBytes -= int64(len(k))
}

// termID returns the id of term t, whose hash is h, adding it to the
// dictionary if new.
func (x *Index) termID(t string, h uint64) uint32 {
	if tid, ok := x.dict.find(h, t, x.terms); ok {
		return tid
	}
	// Our own copy: t is a substring of the whole analysed text.
	text := strings.Clone(t)
	var tid uint32
	if n := len(x.termsFree); n > 0 {
		tid = x.termsFree[n-1]
		x.termsFree = x.termsFree[:n-1]
	} else {
		tid = uint32(len(x.terms))
		x.terms = append(x.terms, termEntry{})
	}
	x.terms[tid] = newTermEntry(text, h)
	x.dict.insert(h, tid, x.terms)
	x.textBytes += int64(len(text))
	return tid
}

// allocDoc returns an unused document id.
func (x *Index) allocDoc() uint32 {
	if n := len(x.docsFree); n > 0 {
		id := x.docsFree[n-1]
		x.docsFree = x.docsFree[:n-1]
		return id
	}
	if uint64(len(x.docs)) >= 1<<32-1 {
		panic("textidx: document ids exhausted")
	}
	x.docs = append(x.docs, docEntry{})
	x.lengths = append(x.lengths, 0)
	if len(x.live)*64 < len(x.docs) {
		x.live = append(x.live, 0)
	}
	return uint32(len(x.docs) - 1)
}

// isLive reports whether document id is live.
func (x *Index) isLive(id uint32) bool { return x.live[id/64]&(1<<(id%64)) != 0 }

// kill makes live document id dead: its postings become dead postings,
// compacted once a term's dead postings outnumber its live ones. The caller
// updates the key map.
func (x *Index) kill(id uint32) {
	if !x.isLive(id) {
		panic("textidx: removing a document that is not live")
	}
	d := &x.docs[id]
	tids := d.forward().ids()
	x.live[id/64] &^= 1 << (id % 64)
	x.lengths[id] = 0
	d.refs = d.n
	d.key = ""
	x.dataWords -= int64(cap(d.data))
	d.data = nil
	x.docsLive--
	x.lengthTotal -= uint64(d.length)
	x.postingsLive -= int64(len(tids))
	d.length = 0
	// d may move if compaction frees ids: use no pointer into x.docs below.
	sink := uint32(0)
	for _, tid := range tids { // see Put: overlap the term entries' misses
		sink += x.terms[tid].dead
	}
	x.sink += sink
	for _, tid := range tids {
		te := &x.terms[tid]
		te.dead++
		if 2*te.dead > te.n {
			x.compact(tid)
		}
	}
}

// Stats describes the index's size.
type Stats struct {
	Docs      int     // indexed documents
	Terms     int     // distinct terms
	Postings  int64   // live postings: (term, document) pairs
	Bytes     int64   // estimated memory held by the index
	AvgDocLen float64 // mean |D| over indexed documents
}

// mapEntryBytes estimates the cost of one map entry (key header, value and
// the map's own overhead at its usual load).
const mapEntryBytes = 40

// Stats returns the index's size, estimated from counters kept as it
// changes (O(1)).
func (x *Index) Stats() Stats {
	s := Stats{Docs: x.docsLive, Terms: x.dict.count, Postings: x.postingsLive}
	if x.docsLive > 0 {
		s.AvgDocLen = float64(x.lengthTotal) / float64(x.docsLive)
	}
	s.Bytes = x.postingSlots*int64(unsafe.Sizeof(posting{})) +
		x.dataWords*4 +
		x.textBytes +
		int64(cap(x.terms))*int64(unsafe.Sizeof(termEntry{})) +
		int64(cap(x.docs))*int64(unsafe.Sizeof(docEntry{})) + int64(cap(x.live))*8 + int64(cap(x.lengths))*4 +
		int64(len(x.keys))*mapEntryBytes +
		int64(len(x.dict.slots))*8 +
		int64(cap(x.termsFree)+cap(x.docsFree))*4 +
		x.search.bytes()
	return s
}

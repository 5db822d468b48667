package textidx

import (
	"fmt"
	"slices"
	"strings"
)

// queryTerm is one distinct term of a query, resolved against the index.
type queryTerm struct {
	tid   uint32
	hash  uint64 // the term's hash, which a forward index keeps a tag of
	known bool   // the term is in the dictionary
	idf   float64
}

// resolvedClause is a clause whose words point into the query's terms.
type resolvedClause struct {
	terms   []int    // indexes into the query's terms
	offsets []uint32 // offsets[i] is terms[i]'s offset in a phrase
}

func (c resolvedClause) isPhrase() bool { return len(c.terms) > 1 }

// searchScratch is reused between searches (the index has one owner, so
// there is no sharing to fear): per-document score accumulators and counts
// of query terms held, marked fresh per search by an epoch instead of being
// cleared.
type searchScratch struct {
	// checks counts the search's phrase lookups, against PhraseChecksMax.
	checks  int
	acc     []float64
	held    []uint32 // query terms the document holds
	epoch   []uint32
	cur     uint32
	touched []uint32
}

func (s *searchScratch) bytes() int64 {
	return int64(cap(s.acc))*8 + int64(cap(s.held)+cap(s.epoch)+cap(s.touched))*4
}

// begin readies the accumulators for a search over ids below docs.
func (s *searchScratch) begin(docs int) {
	if len(s.epoch) < docs {
		grow := docs - len(s.epoch)
		s.epoch = append(s.epoch, make([]uint32, grow)...)
		s.held = append(s.held, make([]uint32, grow)...)
		s.acc = append(s.acc, make([]float64, grow)...)
	}
	s.cur++
	if s.cur == 0 { // wrapped: old marks could look fresh
		clear(s.epoch)
		s.cur = 1
	}
	s.touched = s.touched[:0]
}

// allStrategy says how All mode finds documents holding every term.
type allStrategy int

const (
	allAuto       allStrategy = iota
	allByForward              // walk the rarest term, look the others up per document
	allByCounting             // walk every term, count terms held per document
)

// forwardCostRatio is about how much more a forward lookup (a document's
// forward index, rarely in cache) costs than a counted posting (sequential
// list, accumulators in cache): All mode walks only the rarest list when
// that list is this many times shorter than all the lists together.
const forwardCostRatio = 16

// Search returns the documents matching q, best first: by BM25 score, ties
// broken by key ascending. A query whose words are all stop words or all
// unknown returns no hits and no error. Search uses scratch space kept in
// the index: like every method of Index, call it from the owning goroutine.
func (x *Index) Search(q Query) ([]Hit, error) {
	if q.Mode != All && q.Mode != Any {
		return nil, fmt.Errorf("%w: unknown mode %d", ErrBadQuery, int(q.Mode))
	}
	limit, err := limitOf(q.Limit, x.opts)
	if err != nil {
		return nil, err
	}
	pq, err := parseQuery(q.Text, x.opts)
	if err != nil {
		return nil, err
	}
	hits := []Hit{}
	if x.docsLive == 0 || len(pq.terms) == 0 {
		return hits, nil
	}

	qts := make([]queryTerm, len(pq.terms))
	for i, t := range pq.terms {
		h := termHash(t)
		if tid, ok := x.dict.find(h, t, x.terms); ok {
			qts[i] = queryTerm{tid: tid, hash: h, known: true, idf: idf(x.docsLive, x.terms[tid].live())}
		}
	}
	clauses := make([]resolvedClause, len(pq.clauses))
	phrases := false
	for i, c := range pq.clauses {
		rc := resolvedClause{terms: make([]int, len(c.words)), offsets: make([]uint32, len(c.words))}
		for j, w := range c.words {
			k, ok := slices.BinarySearch(pq.terms, w.term)
			if !ok {
				panic("textidx: a clause term is missing from the query's terms")
			}
			rc.terms[j], rc.offsets[j] = k, w.offset
		}
		clauses[i] = rc
		phrases = phrases || rc.isPhrase()
	}

	m := bm25{k1: x.opts.K1, b: x.opts.B, avgdl: float64(x.lengthTotal) / float64(x.docsLive)}
	top := topK{limit: limit, h: hits, docs: x.docs}
	x.search.checks = 0
	if q.Mode == All {
		x.searchAll(qts, clauses, phrases, m, &top)
	} else {
		x.searchAny(qts, clauses, phrases, m, &top)
	}
	if x.overChecks() {
		return nil, fmt.Errorf("%w: its phrases need more than %d lookups of a word's position in the values holding their words; use rarer words, or fewer or shorter phrases",
			ErrQueryTooLarge, x.opts.PhraseChecksMax)
	}
	return top.sorted(), nil
}

// overChecks reports whether the search has spent its phrase lookups
// (PhraseChecksMax): it stops, and is refused.
func (x *Index) overChecks() bool { return x.search.checks > x.opts.PhraseChecksMax }

// searchAll keeps the documents that hold every term and every phrase.
func (x *Index) searchAll(qts []queryTerm, clauses []resolvedClause, phrases bool, m bm25, top *topK) {
	driver, total := -1, 0
	for i, qt := range qts {
		if !qt.known {
			return // a term no document holds: nothing holds them all
		}
		n := int(x.terms[qt.tid].n)
		total += n
		if driver < 0 || n < int(x.terms[qts[driver].tid].n) {
			driver = i
		}
	}
	strategy := x.allStrategy
	if strategy == allAuto {
		strategy = allByCounting
		if forwardCostRatio*int(x.terms[qts[driver].tid].n) < total {
			strategy = allByForward
		}
	}
	if strategy == allByCounting {
		x.accumulate(qts, m)
		x.offerTouched(qts, clauses, phrases, All, top)
		return
	}
	where := make([]int, len(qts)) // where[i]: index of query term i among the document's terms
	for part := range x.postings(qts[driver].tid) {
		x.offerByForward(part, qts, clauses, phrases, m, top, where)
		if x.overChecks() {
			return
		}
	}
}

// offerByForward offers the documents of postings that hold every query
// term and phrase, as their forward indexes tell.
func (x *Index) offerByForward(postings []posting, qts []queryTerm, clauses []resolvedClause, phrases bool, m bm25, top *topK, where []int) {
next:
	for _, p := range postings {
		if !x.isLive(p.doc) {
			continue
		}
		d := &x.docs[p.doc]
		f := d.forward()
		for i, qt := range qts {
			k, ok := f.find(qt.tid, qt.hash)
			if !ok {
				continue next
			}
			where[i] = k
		}
		if phrases {
			if x.overChecks() {
				return
			}
			for _, c := range clauses {
				if c.isPhrase() && !f.phraseAt(c, where, &x.search.checks) {
					continue next
				}
			}
		}
		norm := m.norm(d.length)
		score := 0.0
		for i, qt := range qts {
			score += m.term(qt.idf, f.freq(where[i]), norm)
		}
		top.offer(score, p.doc)
	}
}

// searchAny keeps the documents that satisfy at least one clause.
func (x *Index) searchAny(qts []queryTerm, clauses []resolvedClause, phrases bool, m bm25, top *topK) {
	x.accumulate(qts, m)
	x.offerTouched(qts, clauses, phrases, Any, top)
}

// accumulate adds up, for every live document holding a query term, its
// score and the number of query terms it holds, term by term in the
// query's order (the order every path sums in).
func (x *Index) accumulate(qts []queryTerm, m bm25) {
	s := &x.search
	s.begin(len(x.docs))
	for _, qt := range qts {
		if !qt.known {
			continue
		}
		for part := range x.postings(qt.tid) {
			x.accumulatePart(part, qt.idf, m)
		}
	}
}

// accumulatePart adds one part of a term's postings list to the scores.
func (x *Index) accumulatePart(postings []posting, idf float64, m bm25) {
	s := &x.search
	for _, p := range postings {
		if !x.isLive(p.doc) {
			continue
		}
		if s.epoch[p.doc] != s.cur {
			s.epoch[p.doc] = s.cur
			s.acc[p.doc] = 0
			s.held[p.doc] = 0
			s.touched = append(s.touched, p.doc)
		}
		s.acc[p.doc] += m.term(idf, p.freq, m.norm(x.lengths[p.doc]))
		s.held[p.doc]++
	}
}

// offerTouched offers the accumulated documents that match in mode: in All
// mode those holding every term, and every phrase; in Any mode those
// satisfying a clause.
func (x *Index) offerTouched(qts []queryTerm, clauses []resolvedClause, phrases bool, mode Mode, top *topK) {
	s := &x.search
	var where []int
	if phrases {
		where = make([]int, len(qts))
	}
	for _, id := range s.touched {
		if mode == All && int(s.held[id]) != len(qts) {
			continue
		}
		if phrases {
			if x.overChecks() {
				return
			}
			f := x.docs[id].forward()
			checks := &s.checks
			if mode == All && !f.allPhrases(qts, clauses, where, checks) || mode == Any && !f.anyClause(qts, clauses, where, checks) {
				continue
			}
		}
		top.offer(s.acc[id], id)
	}
}

// allPhrases reports whether the document, which holds every query term,
// holds every phrase. where is scratch of one entry per query term; checks
// counts the lookups (phraseAt).
func (f forward) allPhrases(qts []queryTerm, clauses []resolvedClause, where []int, checks *int) bool {
	for i, qt := range qts {
		k, ok := f.find(qt.tid, qt.hash)
		if !ok {
			panic("textidx: a document counted as holding a term it does not hold")
		}
		where[i] = k
	}
	for _, c := range clauses {
		if c.isPhrase() && !f.phraseAt(c, where, checks) {
			return false
		}
	}
	return true
}

// anyClause reports whether the document satisfies at least one clause.
// where is scratch of one entry per query term; checks counts the lookups
// (phraseAt).
func (f forward) anyClause(qts []queryTerm, clauses []resolvedClause, where []int, checks *int) bool {
	for _, c := range clauses {
		ok := true
		for _, ti := range c.terms {
			if !qts[ti].known {
				ok = false
				break
			}
			k, found := f.find(qts[ti].tid, qts[ti].hash)
			if !found {
				ok = false
				break
			}
			where[ti] = k
		}
		if ok && (!c.isPhrase() || f.phraseAt(c, where, checks)) {
			return true
		}
	}
	return false
}

// phraseAt reports whether the phrase's terms occur at their offsets from a
// common start. where[i] is query term i's index among the document's
// terms, set for every term of the phrase. It tries the places of the
// phrase's word with the fewest kept positions in the document, and looks
// each other word up at its offset from there: a lookup each, counted in
// checks.
func (f forward) phraseAt(c resolvedClause, where []int, checks *int) bool {
	anchor, fewest := 0, -1
	for j, t := range c.terms {
		if n := f.start(where[t]+1) - f.start(where[t]); fewest < 0 || n < fewest {
			anchor, fewest = j, n
		}
	}
	a := where[c.terms[anchor]]
	for k := f.start(a); k < f.start(a+1); k++ {
		p := f.pos(k)
		if p < c.offsets[anchor] {
			continue // the phrase would start before the text
		}
		start := p - c.offsets[anchor]
		found := true
		for j := range c.terms {
			if j == anchor {
				continue
			}
			*checks++
			if !f.hasPos(where[c.terms[j]], start+c.offsets[j]) {
				found = false
				break
			}
		}
		if found {
			return true
		}
	}
	return false
}

// topK keeps the best limit hits seen, in a heap whose root is the worst
// kept hit, so each offer costs O(log limit). A document's key is read
// only if its score could earn it a place.
type topK struct {
	limit int
	h     []Hit
	docs  []docEntry
}

// better orders hits: higher score first, then key ascending.
func better(a, b Hit) bool {
	return a.Score > b.Score || a.Score == b.Score && a.Key < b.Key
}

func (t *topK) offer(score float64, id uint32) {
	if len(t.h) == t.limit && score < t.h[0].Score {
		return
	}
	h := Hit{Key: t.docs[id].key, Score: score}
	if len(t.h) < t.limit {
		t.h = append(t.h, h)
		// Sift up: a parent must be worse than its children.
		i := len(t.h) - 1
		for i > 0 {
			parent := (i - 1) / 2
			if !better(t.h[parent], t.h[i]) {
				break
			}
			t.h[parent], t.h[i] = t.h[i], t.h[parent]
			i = parent
		}
		return
	}
	if !better(h, t.h[0]) {
		return
	}
	t.h[0] = h
	i, n := 0, len(t.h)
	for {
		worst := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < n && better(t.h[worst], t.h[c]) {
				worst = c
			}
		}
		if worst == i {
			return
		}
		t.h[i], t.h[worst] = t.h[worst], t.h[i]
		i = worst
	}
}

// sorted returns the kept hits, best first.
func (t *topK) sorted() []Hit {
	slices.SortFunc(t.h, func(a, b Hit) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	return t.h
}

package textidx

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// The brute-force model: a map from key to Doc, searched by looking at
// every document, with BM25 written out from the formula. It shares with
// the index only Analyze and parseQuery, which have their own tests.

type model struct {
	o    Options
	docs map[string]Doc // only documents with terms, as the index holds
}

func newModel(o Options) *model { return &model{o: o, docs: map[string]Doc{}} }

func (m *model) put(key string, d Doc) {
	if len(d.Terms()) == 0 {
		delete(m.docs, key)
		return
	}
	m.docs[key] = d
}

func (m *model) sortedKeys() []string {
	keys := make([]string, 0, len(m.docs))
	for k := range m.docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// satisfies reports whether d holds the clause: its term, or its phrase
// at consecutive (offset) positions.
func satisfies(d Doc, c clause) bool {
	for _, w := range c.words {
		if d.Freq(w.term) == 0 {
			return false
		}
	}
	if !c.isPhrase() {
		return true
	}
	for _, start := range d.Positions(c.words[0].term) {
		all := true
		for _, w := range c.words[1:] {
			if !slices.Contains(d.Positions(w.term), start+int(w.offset)) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// score returns every document's hits for q, unlimited, plus each matching
// key's score; errors are the index's to test, so q must be valid.
func (m *model) search(q Query) ([]Hit, map[string]float64) {
	pq, err := parseQuery(q.Text, m.o)
	if err != nil {
		panic(err)
	}
	n := float64(len(m.docs))
	total := 0.0
	df := map[string]int{}
	for _, d := range m.docs {
		total += float64(d.Len())
		for _, t := range pq.terms {
			if d.Freq(t) > 0 {
				df[t]++
			}
		}
	}
	avgdl := total / n
	k1, b := m.o.K1, m.o.B
	var hits []Hit
	scores := map[string]float64{}
	for _, key := range m.sortedKeys() {
		d := m.docs[key]
		matched := 0
		for _, c := range pq.clauses {
			if satisfies(d, c) {
				matched++
			}
		}
		if len(pq.clauses) == 0 || q.Mode == All && matched < len(pq.clauses) || q.Mode == Any && matched == 0 {
			continue
		}
		s := 0.0
		for _, t := range pq.terms { // the same order as the index sums in
			f := float64(d.Freq(t))
			if f == 0 {
				continue
			}
			nq := float64(df[t])
			idf := math.Log((n-nq+0.5)/(nq+0.5) + 1)
			s += idf * f * (k1 + 1) / (f + k1*(1-b+b*float64(d.Len())/avgdl))
		}
		hits = append(hits, Hit{Key: key, Score: s})
		scores[key] = s
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score }) // keys already ascending
	return hits, scores
}

// checkSearch compares the index with the model for one query: the same
// number of hits, each hit's score within 1e-9 of the model's score for
// that key and of the model's hit at that rank, and the same key at every
// rank except between scores within 1e-9 of each other, where rounding
// may order them either way. The index's own order must be strict.
func checkSearch(t *rapid.T, x *Index, m *model, q Query) {
	got, err := x.Search(q)
	if err != nil {
		t.Fatalf("%+v: %v", q, err)
	}
	limit := q.Limit
	if limit == 0 {
		limit = min(limitDefault, m.o.ResultsMax)
	}
	all, scores := m.search(q)
	want := all[:min(limit, len(all))]
	if len(got) != len(want) {
		t.Fatalf("%+v: %d hits %v, model %d %v", q, len(got), got, len(want), want)
	}
	for i, h := range got {
		s, ok := scores[h.Key]
		if !ok {
			t.Fatalf("%+v: hit %d %q does not match in the model; model %v", q, i, h.Key, want)
		}
		if math.Abs(h.Score-s) > 1e-9 || math.Abs(h.Score-want[i].Score) > 1e-9 {
			t.Fatalf("%+v: hit %d %v, model score %v, model hit %v", q, i, h, s, want[i])
		}
		if h.Key != want[i].Key && math.Abs(s-want[i].Score) > 1e-9 {
			t.Fatalf("%+v: hit %d is %q, model has %q\n got   %v\n model %v", q, i, h.Key, want[i].Key, got, want)
		}
		if i > 0 && !better(got[i-1], h) {
			t.Fatalf("%+v: hits %d and %d out of order: %v", q, i-1, i, got)
		}
	}
}

// checkStats compares Stats with the model.
func checkStats(t *rapid.T, x *Index, m *model) {
	s := x.Stats()
	terms := map[string]bool{}
	postings, total := 0, 0
	for _, d := range m.docs {
		for _, term := range d.Terms() {
			terms[term] = true
		}
		postings += len(d.Terms())
		total += d.Len()
	}
	avg := 0.0
	if len(m.docs) > 0 {
		avg = float64(total) / float64(len(m.docs))
	}
	if s.Docs != len(m.docs) || x.Len() != len(m.docs) || s.Terms != len(terms) || s.Postings != int64(postings) || s.AvgDocLen != avg {
		t.Fatalf("stats %+v len %d; model %d docs, %d terms, %d postings, avgdl %v", s, x.Len(), len(m.docs), len(terms), postings, avg)
	}
	if s.Bytes <= 0 && s.Docs > 0 {
		t.Fatalf("stats %+v: no bytes for a non-empty index", s)
	}
	checkInvariants(t, x)
}

// checkChunks checks the postings lists' storage: each term with chunks
// counts them, every chunk and chunk-sized tail is held once (by one list
// or the free list), and the slots counted for Stats are the slots held.
func checkChunks(t interface{ Fatalf(string, ...any) }, x *Index) {
	held := map[*posting]string{}
	hold := func(c postingChunk, by string) {
		if len(c) != x.chunkLen || cap(c) != x.chunkLen {
			t.Fatalf("a chunk of %s has %d postings and room for %d, not %d", by, len(c), cap(c), x.chunkLen)
		}
		if other, ok := held[&c[0]]; ok {
			t.Fatalf("a chunk is held by %s and by %s", other, by)
		}
		held[&c[0]] = by
	}
	slots := int64(0)
	for tid := range x.terms {
		te := &x.terms[tid]
		chunks, ok := x.chunks[uint32(tid)]
		if ok && len(chunks) == 0 || len(chunks)*x.chunkLen+len(te.tail) != int(te.n) {
			t.Fatalf("term %q counts %d postings, has %d chunks (%v) and %d in its tail", te.text, te.n, len(chunks), ok, len(te.tail))
		}
		for _, c := range chunks {
			hold(c, te.text)
			slots += int64(x.chunkLen)
		}
		if cap(te.tail) == x.chunkLen {
			hold(te.tail[:x.chunkLen], te.text+"'s tail")
		} else if len(chunks) > 0 {
			t.Fatalf("term %q has chunks but a tail of %d slots, not a chunk", te.text, cap(te.tail))
		}
		slots += int64(cap(te.tail))
	}
	if len(x.chunks) > len(x.terms) || len(x.chunksFree) > chunksFreeMax {
		t.Fatalf("%d terms with chunks of %d terms; %d free chunks", len(x.chunks), len(x.terms), len(x.chunksFree))
	}
	for _, c := range x.chunksFree {
		hold(c, "the free list")
		slots += int64(x.chunkLen)
	}
	if slots != x.postingSlots {
		t.Fatalf("posting slots held %d, counted %d", slots, x.postingSlots)
	}
}

// checkInvariants walks the index's structure: every term's dead count and
// live postings, the dictionary, and the documents' reference counts.
func checkInvariants(t *rapid.T, x *Index) {
	refs := make([]uint32, len(x.docs))
	liveTerms := 0
	checkChunks(t, x)
	for tid := range x.terms {
		te := &x.terms[tid]
		if te.text == "" {
			if te.n != 0 || te.tail != nil || x.chunks[uint32(tid)] != nil {
				t.Fatalf("freed term %d holds postings", tid)
			}
			continue
		}
		liveTerms++
		hash := termHash(te.text)
		if got, ok := x.dict.find(hash, te.text, x.terms); !ok || got != uint32(tid) || te.hash != uint32(hash) {
			t.Fatalf("term %q (%d) not found in the dictionary (got %d, %v)", te.text, tid, got, ok)
		}
		dead, n := 0, 0
		for part := range x.postings(uint32(tid)) {
			for _, p := range part {
				n++
				f := x.docs[p.doc].forward()
				if x.isLive(p.doc) {
					k, ok := f.find(uint32(tid), hash)
					if !ok || f.freq(k) != p.freq {
						t.Fatalf("term %q: posting %+v not in the document's forward index", te.text, p)
					}
				} else {
					dead++
					refs[p.doc]++
				}
			}
		}
		if n != int(te.n) || dead != int(te.dead) || 2*dead > n || te.live() == 0 {
			t.Fatalf("term %q: %d dead postings counted %d of %d (count %d)", te.text, dead, te.dead, n, te.n)
		}
	}
	if liveTerms != x.dict.count {
		t.Fatalf("%d terms, dictionary holds %d", liveTerms, x.dict.count)
	}
	free := map[uint32]bool{}
	for _, id := range x.docsFree {
		free[id] = true
	}
	for id := range x.docs {
		d := &x.docs[id]
		switch {
		case x.isLive(uint32(id)):
			if x.keys[d.key] != uint32(id) {
				t.Fatalf("doc %d key %q maps to %d", id, d.key, x.keys[d.key])
			}
		case free[uint32(id)]:
			if refs[id] != 0 || d.refs != 0 {
				t.Fatalf("free doc id %d is still named by %d postings", id, refs[id])
			}
		default:
			if refs[id] != d.refs || d.refs == 0 {
				t.Fatalf("dead doc id %d counts %d references, has %d", id, d.refs, refs[id])
			}
		}
	}
}

// Small vocabulary so that documents share terms, stop words and
// inflections appear, and phrases match by chance.
var modelWords = []string{"cat", "cats", "dog", "dogs", "run", "running", "runs", "fish", "bird", "red", "green",
	"the", "a", "of", "and", "new", "york", "data", "store", "stores", "storing", "x1", "é"}

func drawText(t *rapid.T, label string) string {
	n := rapid.IntRange(0, 14).Draw(t, label+"-n")
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(rapid.SampledFrom(modelWords).Draw(t, label+"-w"))
		b.WriteString(rapid.SampledFrom([]string{" ", " ", " ", ", ", ". ", "-"}).Draw(t, label+"-sep"))
	}
	if rapid.IntRange(0, 30).Draw(t, label+"-binary") == 0 {
		b.WriteString("\x00")
	}
	return b.String()
}

func drawQuery(t *rapid.T, o Options) Query {
	var parts []string
	for n := rapid.IntRange(1, 3).Draw(t, "q-parts"); n > 0; n-- {
		if rapid.IntRange(0, 3).Draw(t, "q-phrase") == 0 {
			var ws []string
			for k := rapid.IntRange(1, 3).Draw(t, "q-phrase-n"); k > 0; k-- {
				ws = append(ws, rapid.SampledFrom(modelWords).Draw(t, "q-w"))
			}
			parts = append(parts, `"`+strings.Join(ws, " ")+`"`)
			continue
		}
		parts = append(parts, rapid.SampledFrom(append(modelWords, "unknown")).Draw(t, "q-w"))
	}
	return Query{
		Text:  strings.Join(parts, " "),
		Mode:  rapid.SampledFrom([]Mode{All, Any}).Draw(t, "q-mode"),
		Limit: rapid.IntRange(0, min(6, o.ResultsMax)).Draw(t, "q-limit"),
	}
}

func drawOptions(t *rapid.T) Options {
	o := DefaultOptions()
	if rapid.Bool().Draw(t, "small-limits") {
		o.TermsPerDocMax = rapid.IntRange(1, 6).Draw(t, "terms-max")
		o.PositionsPerTermMax = rapid.IntRange(1, 3).Draw(t, "positions-max")
		o.TokenBytesMax = rapid.IntRange(2, 8).Draw(t, "token-max")
	}
	o.K1 = rapid.SampledFrom([]float64{1.2, 0, 2}).Draw(t, "k1")
	o.B = rapid.SampledFrom([]float64{0.75, 0, 1}).Draw(t, "b")
	return o
}

// TestSearchMatchesBruteForce: random corpora and queries, index vs model.
func TestSearchMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t)
		x, m := New(o), newModel(o)
		x.allStrategy = drawStrategy(t)
		x.chunkLen = drawChunkLen(t)
		for i, n := 0, rapid.IntRange(0, 25).Draw(t, "docs"); i < n; i++ {
			key := fmt.Sprintf("k%02d", rapid.IntRange(0, 30).Draw(t, "key"))
			d := Analyze(drawText(t, "text"), o)
			if rapid.Bool().Draw(t, "wide") { // the layout of a value of 65,536 words or more
				d = widen(d)
			}
			x.Put(key, d)
			m.put(key, d)
		}
		checkStats(t, x, m)
		for i := 0; i < 5; i++ {
			checkSearch(t, x, m, drawQuery(t, o))
		}
	})
}

// TestIndexStateMachine: random Put, Remove, Reset and Search sequences
// against the model, with the structure's invariants checked after each
// step; keys are few so that updates and removals are frequent, and lazy
// compaction and id reuse run often.
func TestIndexStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t)
		x, m := New(o), newModel(o)
		x.allStrategy = drawStrategy(t)
		x.chunkLen = drawChunkLen(t)
		key := func(t *rapid.T) string { return fmt.Sprintf("k%d", rapid.IntRange(0, 12).Draw(t, "key")) }
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				k, text := key(t), drawText(t, "text")
				x.Set(k, text)
				m.put(k, Analyze(text, o))
			},
			"remove": func(t *rapid.T) {
				k := key(t)
				x.Remove(k)
				delete(m.docs, k)
			},
			"reset": func(t *rapid.T) {
				if rapid.IntRange(0, 9).Draw(t, "reset") == 0 {
					x.Reset()
					m.docs = map[string]Doc{}
				}
			},
			"search": func(t *rapid.T) { checkSearch(t, x, m, drawQuery(t, o)) },
			"":       func(t *rapid.T) { checkStats(t, x, m) },
		})
	})
}

// drawChunkLen makes postings lists' chunks small, as well as their size,
// so that a few documents fill chunks and compaction frees them.
func drawChunkLen(t *rapid.T) int {
	return rapid.SampledFrom([]int{2, 4, 8, chunkPostings}).Draw(t, "chunk-len")
}

func drawStrategy(t *rapid.T) allStrategy {
	return rapid.SampledFrom([]allStrategy{allAuto, allByForward, allByCounting}).Draw(t, "all-strategy")
}

// TestAllStrategiesAgree: All mode gives bit-identical hits whether it
// walks the rarest term's postings or counts over every term's.
func TestAllStrategiesAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t)
		x := New(o)
		for i, n := 0, rapid.IntRange(0, 30).Draw(t, "docs"); i < n; i++ {
			x.Set(fmt.Sprintf("k%02d", rapid.IntRange(0, 20).Draw(t, "key")), drawText(t, "text"))
		}
		for i := 0; i < 5; i++ {
			q := drawQuery(t, o)
			q.Mode = All
			x.allStrategy = allByForward
			a, errA := x.Search(q)
			x.allStrategy = allByCounting
			b, errB := x.Search(q)
			if errA != nil || errB != nil || !slices.Equal(a, b) {
				t.Fatalf("%+v: forward %v %v, counting %v %v", q, a, errA, b, errB)
			}
		}
	})
}

// TestDeterministic runs the same calls on two indexes and compares every
// result and the final Stats.
func TestDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		o := drawOptions(t)
		x, y := New(o), New(o)
		for i, n := 0, rapid.IntRange(1, 60).Draw(t, "ops"); i < n; i++ {
			k := fmt.Sprintf("k%d", rapid.IntRange(0, 9).Draw(t, "key"))
			if rapid.IntRange(0, 4).Draw(t, "op") == 0 {
				x.Remove(k)
				y.Remove(k)
				continue
			}
			text := drawText(t, "text")
			x.Set(k, text)
			y.Set(k, text)
			q := drawQuery(t, o)
			a, errA := x.Search(q)
			b, errB := y.Search(q)
			if fmt.Sprint(a, errA) != fmt.Sprint(b, errB) {
				t.Fatalf("%+v: %v %v vs %v %v", q, a, errA, b, errB)
			}
		}
		if x.Stats() != y.Stats() {
			t.Fatalf("stats %+v vs %+v", x.Stats(), y.Stats())
		}
	})
}

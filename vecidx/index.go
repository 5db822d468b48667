package vecidx

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The Index maps keys to unit vectors and answers top-k cosine queries
// with segmented HNSW: the vectors lie in segments (segment.go), each with
// an HNSW graph of its own (hnsw.go), and a search runs every segment's
// graph and merges their answers.
//
// A node calls Put and Remove in the same turn as the write they mirror,
// at thousands of writes a second, so both must be cheap however large
// the index. A Put stores the vector, quantises it into a new node of the
// growing segment and returns; a Remove marks the key's node a tombstone.
// Linking new nodes into their graphs is deferred to Work(n), which the
// host runs in bounded units in its spare turns, oldest node first; nodes
// not linked yet are scanned exactly by every search. A segment's graph
// stays small (SegmentVectors nodes when sealed), so that linking a node
// finds the graph in the cache.
//
// Work also cleans up: a sealed segment whose tombstones pass
// deadShareMax of its nodes is compacted (its live vectors move to the
// growing segment, to be linked again, and the segment goes), and when
// nothing else is left to do, small sealed segments are merged into
// larger ones up to MergeVectorsMax nodes: the smaller one's live vectors
// are linked into the larger one's graph, which is kept (as Lucene does
// with the largest segment of a merge), so a search has fewer graphs to
// run. Merges are the last of the work, done when writes leave time.
//
// A search never returns a key whose current vector is not the one it
// scored, nor a removed key: a key's current vector is in exactly one
// live node; a Put or Remove of the key kills that node before anything
// else; graph searches report live nodes only; and the best candidates by
// their codes are scored again with their entry's float32 vector, with
// the same dot product as Exact, before they are ranked.
//
// Back-pressure: when more than PendingMax nodes wait to be linked (writes
// with no spare turns), each Put does two units of Work before returning,
// so the exact scan every search pays for them stays bounded.
//
// Below ExactBelow vectors in all, Search is Exact: a scan of a few
// thousand vectors is fast and exact. Work still builds the graphs, so
// they are ready when the index grows past the threshold.
//
// An Index is used from one goroutine (the node's loop); it keeps scratch
// space between calls, so even searches must not run concurrently.
type Index struct {
	dim  int
	opts IndexOptions
	rng  splitmix // draws the nodes' levels

	byKey   map[string]*entry
	entries []*entry   // every key's current entry, in no particular order: the exact scan
	segs    []*segment // oldest first; the last one grows unless sealed
	// unlinked counts the nodes of all segments that wait to be linked.
	unlinked int
	// A merge in progress: from's live vectors move into to's graph.
	mergeFrom, mergeTo *segment

	keyBytes int64 // total length of the keys, for Stats
	// bulk: Put never does Work itself (see Bulk).
	bulk bool

	// Scratch space for the searches.
	top  scanHeap // a search's best candidates by their codes
	vecs [][]float32
	hits hitHeap
}

// entry is one key and its current vector, which is in node node of
// segment seg. A Put of another vector kills that node and adds one.
type entry struct {
	key  string
	vec  []float32 // unit vector
	slot int       // position in Index.entries, -1 once removed
	seg  *segment
	node uint32
}

// touchVecs loads one value of every cache line of vecs (unit vectors):
// see Search. That the sum of what it loads is finite keeps the loads
// from being optimised away, and checks the vectors.
func touchVecs(vecs [][]float32) {
	const lineFloats = 16 // 64-byte lines
	var x float32
	for _, v := range vecs {
		for j := 0; j < len(v); j += lineFloats {
			x += v[j]
		}
		x += v[len(v)-1]
	}
	if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
		panic("vecidx: an indexed vector is not finite")
	}
}

// IndexOptions set the graphs' shape, the segments' sizes and the Index's
// thresholds. Start from DefaultIndexOptions; NewIndex panics on values
// outside their limits, since they are configuration, not input.
type IndexOptions struct {
	M int // max neighbours per node per layer above 0 (layer 0: 2·M); 2..MMax
	// EfConstruction: result-set size while linking a node into a merged
	// graph; 1..EfMax.
	EfConstruction int
	// SegmentEfConstruction: the same in a growing segment, whose links
	// every write pays for; a graph of a few thousand nodes needs less to
	// be as well linked; 1..EfMax.
	SegmentEfConstruction int
	// EfSearch: result-set size of the search of a graph that holds all
	// the vectors; a graph of n of N vectors is searched with
	// EfSearch·√(n/N), at least k; 1..EfMax.
	EfSearch int
	// SegmentVectors: the growing segment is sealed at this many nodes;
	// 1..SegmentVectorsMax.
	SegmentVectors int
	// MergeVectorsMax: merges make segments of up to this many nodes; 0
	// merges nothing, else SegmentVectors..SegmentVectorsMax.
	MergeVectorsMax int
	ExactBelow      int    // below this many vectors, Search is exact; ≥ 0
	PendingMax      int    // unlinked nodes beyond which Put does Work itself; ≥ 1
	Seed            uint64 // seeds the level generator: same calls, same seed, same graphs
}

// Limits on options and queries, and the index's constants.
const (
	MMax              = 64      // largest M
	EfMax             = 4096    // largest EfConstruction and EfSearch
	KMax              = 1000    // largest k of a search
	SegmentVectorsMax = 1 << 24 // largest segment, in nodes
	// rerankPerK, rerankMin: a search scores its best max(rerankMin,
	// rerankPerK·k) candidates by code similarity again exactly. A 4-bit
	// estimate is off by about 0.01: on dkv's value vectors the true top
	// 10 were among the best 50 by estimate, but on crowded vectors
	// (synthetic clusters whose nearest neighbours lie 0.001 apart) 5·k
	// found 89% of what scoring all finds, 10·k 97%, 20·k 99.3%. Scoring
	// 200 vectors exactly costs some 30 µs, a small part of a search.
	rerankPerK = 20
	rerankMin  = 32
	// deadShareMax: a sealed segment whose tombstones pass this share of
	// its nodes is compacted. Compacting links its live vectors again, so
	// a lower share costs writes that replace values more (at a half, one
	// link per tombstone; at 0.7, 0.43), and a higher one makes searches
	// walk more dead nodes.
	deadShareMax = 0.7
	// deadMin keeps tiny segments from compacting over a few tombstones.
	deadMin = 4
	// unitSims is one unit of Work: about this many 4-bit similarities
	// (linking nodes, moving vectors), some 0.1 ms. A similarity while
	// linking costs 50–85 ns with what goes with it (the heuristic, the
	// lists, cache misses in a merged graph of 100k nodes: BenchmarkBench100k
	// built 100k vectors at 1,195 similarities and 113 µs a vector merged,
	// 242 and 15 µs in segments). It was 4,096, and a unit took 0.2–0.4 ms:
	// an idle node's pacer then had the loop busy for 2–3 ms of every 2 ms
	// tick while merging, and a search waited behind it (p99 39 ms).
	unitSims = 1024
	// moveSims is what moving one vector to another segment counts for
	// in a unit, besides the similarities of linking it.
	moveSims = 64
)

// DefaultIndexOptions are chosen on dkv's real case at 100k vectors: value
// vectors of 1 KB texts of Zipf-drawn words embedded with the default
// model, and queries of 1–3 mid-frequency words (cmd/bench index, and
// BenchmarkBench100k here). See doc.go for the figures.
func DefaultIndexOptions() IndexOptions {
	return IndexOptions{
		M:                     16,
		EfConstruction:        32,
		SegmentEfConstruction: 8,
		EfSearch:              400,
		SegmentVectors:        4096,
		MergeVectorsMax:       1 << 20,
		ExactBelow:            2048,
		PendingMax:            4096,
	}
}

func (o IndexOptions) check() error {
	switch {
	case o.M < 2 || o.M > MMax:
		return fmt.Errorf("M %d outside 2..%d", o.M, MMax)
	case o.EfConstruction < 1 || o.EfConstruction > EfMax:
		return fmt.Errorf("EfConstruction %d outside 1..%d", o.EfConstruction, EfMax)
	case o.SegmentEfConstruction < 1 || o.SegmentEfConstruction > EfMax:
		return fmt.Errorf("SegmentEfConstruction %d outside 1..%d", o.SegmentEfConstruction, EfMax)
	case o.EfSearch < 1 || o.EfSearch > EfMax:
		return fmt.Errorf("EfSearch %d outside 1..%d", o.EfSearch, EfMax)
	case o.SegmentVectors < 1 || o.SegmentVectors > SegmentVectorsMax:
		return fmt.Errorf("SegmentVectors %d outside 1..%d", o.SegmentVectors, SegmentVectorsMax)
	case o.MergeVectorsMax != 0 && (o.MergeVectorsMax < o.SegmentVectors || o.MergeVectorsMax > SegmentVectorsMax):
		return fmt.Errorf("MergeVectorsMax %d neither 0 nor in SegmentVectors..%d", o.MergeVectorsMax, SegmentVectorsMax)
	case o.ExactBelow < 0:
		return fmt.Errorf("ExactBelow %d is negative", o.ExactBelow)
	case o.PendingMax < 1:
		return fmt.Errorf("PendingMax %d is below 1", o.PendingMax)
	}
	return nil
}

// Errors of Put and Search, matched with errors.Is.
var (
	ErrDim       = errors.New("vecidx: vector has the wrong dimension")
	ErrZero      = errors.New("vecidx: zero vector has no direction")
	ErrNotFinite = errors.New("vecidx: vector has a NaN or infinite component")
	ErrBadK      = fmt.Errorf("vecidx: k outside 1..%d", KMax)
)

func errDim(got, want int) error { return fmt.Errorf("%w: %d, index is %d", ErrDim, got, want) }

// Hit is one search result: a key and its cosine similarity to the query.
type Hit struct {
	Key   string
	Score float32
}

// NewIndex returns an empty index of vectors of dimension dim (1..DimMax).
func NewIndex(dim int, o IndexOptions) *Index {
	if dim < 1 || dim > DimMax {
		panic(fmt.Sprintf("vecidx: dimension %d outside 1..%d", dim, DimMax))
	}
	if err := o.check(); err != nil {
		panic("vecidx: " + err.Error())
	}
	x := &Index{dim: dim, opts: o}
	x.Reset()
	return x
}

// Reset empties the index, so that an index reset and refilled is the same
// as a new one.
func (x *Index) Reset() {
	x.rng = splitmix{s: x.opts.Seed}
	x.byKey = map[string]*entry{}
	x.entries = nil
	x.segs = nil
	x.unlinked = 0
	x.mergeFrom, x.mergeTo = nil, nil
	x.keyBytes = 0
}

// Dim is the dimension of the index's vectors.
func (x *Index) Dim() int { return x.dim }

// Len is the number of keys in the index.
func (x *Index) Len() int { return len(x.entries) }

// Put sets key's vector to v, normalised, replacing any vector it had. A
// vector of the wrong dimension, with a NaN or infinite component, or of
// length zero is refused and the key keeps its old vector. Putting the
// vector a key already has changes nothing. A new key is copied, so the
// caller's string may share memory with anything. Past PendingMax
// unlinked nodes, Put does two units of Work (see Index).
func (x *Index) Put(key string, v []float32) error {
	u, err := unitCopy(v, x.dim)
	if err != nil {
		return err
	}
	return x.put(key, u)
}

// PutOwned is Put for a vector the index may keep: v is normalised in
// place and becomes the key's vector, and the caller must not change it
// afterwards. It saves the copy (and the garbage) of a vector made for
// the index alone, as an embedding is. v being the key's vector already
// changes nothing.
func (x *Index) PutOwned(key string, v []float32) error {
	if len(v) != x.dim {
		return errDim(len(v), x.dim)
	}
	if e, ok := x.byKey[key]; ok && len(v) > 0 && &e.vec[0] == &v[0] {
		return nil
	}
	if _, err := normalise(v, v); err != nil {
		return err
	}
	return x.put(key, v)
}

// put sets key's vector to the unit vector u, which the index keeps.
func (x *Index) put(key string, u []float32) error {
	e, ok := x.byKey[key]
	if ok {
		if slices.Equal(e.vec, u) {
			return nil
		}
		// The key's node dies before the entry takes the new vector, so
		// no search meets the old node with the new vector.
		x.kill(e)
		e.vec = u
	} else {
		// Our own copy: the caller's key may share an allocation with
		// much more (at a restart a node passes the store's strings, each
		// key in one allocation with its value), which the index would
		// keep alive for as long as the key lives.
		key = strings.Clone(key)
		e = &entry{key: key, vec: u, slot: len(x.entries)}
		x.entries = append(x.entries, e)
		x.keyBytes += int64(len(key))
		x.byKey[key] = e
	}
	x.add(x.growing(), e)
	if x.unlinked > x.opts.PendingMax && !x.bulk {
		x.Work(2)
	}
	return nil
}

// growing returns the segment put vectors go to, sealing a full one and
// starting another.
func (x *Index) growing() *segment {
	if n := len(x.segs); n > 0 && !x.segs[n-1].sealed {
		return x.segs[n-1]
	}
	s := &segment{g: newGraph(x.dim, x.opts.M, x.opts.SegmentEfConstruction)}
	x.segs = append(x.segs, s)
	return s
}

// add makes e's vector a new, unlinked node of s. A growing segment that
// fills up is sealed at once, so that Work may merge it.
func (x *Index) add(s *segment, e *entry) {
	e.seg = s
	e.node = s.g.add(e, e.vec, s.g.randomLevel(&x.rng))
	s.drained = 0
	x.unlinked++
	if !s.sealed && s.g.len() >= x.opts.SegmentVectors {
		s.sealed = true
	}
}

// kill makes e's node a tombstone: e is being removed or takes another
// vector.
func (x *Index) kill(e *entry) {
	s := e.seg
	if s == nil || s.g.dead[e.node] || s.g.ent[e.node] != e {
		panic("vecidx: an entry's node is not its live node")
	}
	s.g.markDead(e.node)
	e.seg = nil
}

// Bulk turns back-pressure off (on) or back on (off): while on, Put never
// does Work, however many nodes wait to be linked. A node rebuilding its
// indexes at start loads every value this way, so that a restart does not
// wait for the graphs; Work builds them afterwards, and searches scan
// what is still unlinked exactly meanwhile.
func (x *Index) Bulk(on bool) { x.bulk = on }

// Remove deletes key's vector, if it has one.
func (x *Index) Remove(key string) {
	e, ok := x.byKey[key]
	if !ok {
		return
	}
	delete(x.byKey, key)
	x.keyBytes -= int64(len(key))
	x.kill(e)
	last := x.entries[len(x.entries)-1]
	x.entries[e.slot] = last
	last.slot = e.slot
	x.entries = x.entries[:len(x.entries)-1]
	e.slot = -1
}

// Work does up to n units of deferred work — linking nodes, compacting a
// segment of tombstones, merging segments, in that order of priority —
// and returns how many units remain (an estimate: at least 1 while any
// work is left).
//
// Merges are work like the rest: they are not any write's own cost but an
// investment in searches (until they are done, a search runs every
// segment's graph: at 100k vectors in 30 segments, some 3 times the
// similarities of a merged index). A node's pacer gives Work one unit a
// tick while it writes and eight when it is idle, so merges take a
// twentieth of a core under load and catch up at two fifths of a core
// once writes stop: merging 100k vectors' segments takes some 10 s of CPU,
// half a minute of an idle node's time. (They were held
// to one unit a call, idle or not; after a bulk load of 100k values the
// index then stayed unmerged, and searches 5 times slower, for minutes.)
func (x *Index) Work(n int) (remaining int) {
	for range n {
		budget := int64(unitSims)
		for budget > 0 {
			spent, ok := x.step()
			if !ok {
				return x.remaining()
			}
			budget -= spent
		}
	}
	return x.remaining()
}

// step does one piece of work and says what it cost in similarities, or
// that there is none.
func (x *Index) step() (spent int64, ok bool) {
	x.dropEmpty()
	for _, s := range x.segs {
		if s.unlinked() > 0 {
			before := s.g.simsDone
			s.g.link()
			x.unlinked--
			return int64(s.g.simsDone-before) + 1, true
		}
	}
	if c := x.compactable(); c != nil {
		return x.move(c, x.growing(), false), true
	}
	if x.mergeFrom != nil {
		return x.mergeStep(), true
	}
	if from, to := x.mergeable(); from != nil {
		x.mergeFrom, x.mergeTo = from, to
		// The merged graph is searched with a larger ef, and links
		// what it takes with one.
		to.g.efConstruction = x.opts.EfConstruction
		return moveSims, true
	}
	return 0, false
}

// dropEmpty drops sealed segments with no live node left, but for those
// of a merge in progress (mergeStep ends it).
func (x *Index) dropEmpty() {
	x.segs = slices.DeleteFunc(x.segs, func(s *segment) bool {
		return s.sealed && s.g.live == 0 && s.unlinked() == 0 && s != x.mergeFrom && s != x.mergeTo
	})
}

// compactable returns a sealed, fully linked segment whose tombstones
// passed deadShareMax, if any, oldest first; not one of a merge.
func (x *Index) compactable() *segment {
	for _, s := range x.segs {
		if s.sealed && s.built() && s.g.deadN >= deadMin && s.deadShare() > deadShareMax && s != x.mergeFrom && s != x.mergeTo {
			return s
		}
	}
	return nil
}

// mergeable picks the next merge, if any: the sealed, built segment with
// the fewest live nodes, into the one with the most nodes that can take
// them within MergeVectorsMax. Merging the smallest into the largest that
// has room links each vector again about once, where merging equals with
// equals would link it again at every doubling.
func (x *Index) mergeable() (from, to *segment) {
	if x.opts.MergeVectorsMax == 0 {
		return nil, nil
	}
	for _, s := range x.segs {
		if s.sealed && s.built() && s.g.live > 0 && (from == nil || s.g.live < from.g.live) {
			from = s
		}
	}
	if from == nil {
		return nil, nil
	}
	for _, s := range x.segs {
		if s != from && s.sealed && s.built() && s.g.len()+from.g.live <= x.opts.MergeVectorsMax &&
			s.deadShare() <= deadShareMax && (to == nil || s.g.len() > to.g.len()) {
			to = s
		}
	}
	if to == nil {
		return nil, nil
	}
	return from, to
}

// mergeStep moves one live vector of mergeFrom into mergeTo's graph and
// links it there, or ends the merge when none is left.
func (x *Index) mergeStep() int64 {
	from, to := x.mergeFrom, x.mergeTo
	if from.g.live == 0 {
		x.mergeFrom, x.mergeTo = nil, nil
		return 1
	}
	if !to.built() {
		panic("vecidx: a merge into a segment with unlinked nodes")
	}
	before := to.g.simsDone
	spent := x.move(from, to, true)
	return spent + int64(to.g.simsDone-before)
}

// move moves the newest live vector of from into a new node of to,
// linking it at once with link (a merge) or leaving it to be linked in
// turn (a compaction into the growing segment).
func (x *Index) move(from, to *segment, link bool) int64 {
	g := from.g
	for from.drained < g.len() {
		id := g.len() - 1 - from.drained
		from.drained++
		if g.dead[id] {
			continue
		}
		e := g.ent[id]
		x.kill(e)
		x.add(to, e)
		if link {
			to.g.link()
			x.unlinked--
		}
		return moveSims
	}
	panic("vecidx: move from a segment with no live node")
}

// remaining estimates the units of work left: at least 1 while any is.
func (x *Index) remaining() int {
	units := 0
	if x.unlinked > 0 {
		// A link costs about M·EfConstruction similarities.
		per := max(1, unitSims/(x.opts.M*x.opts.EfConstruction))
		units += (x.unlinked + per - 1) / per
	}
	if x.mergeFrom != nil {
		units += 1 + x.mergeFrom.g.live/max(1, unitSims/(x.opts.M*x.opts.EfConstruction))
	}
	if units == 0 {
		if x.compactable() != nil {
			return 1
		}
		if from, _ := x.mergeable(); from != nil {
			return 1
		}
		for _, s := range x.segs {
			if s.sealed && s.g.live == 0 {
				return 1 // to drop
			}
		}
	}
	return units
}

// Search returns the k keys whose vectors are most similar to q, best first
// (ties by key ascending), with their cosine similarity. Below ExactBelow
// vectors it is Exact; above, it is approximate: a key may be missed, but
// every key returned is present with the vector it was scored on, and its
// score is exact.
func (x *Index) Search(q []float32, k int) ([]Hit, error) {
	if k < 1 || k > KMax {
		return nil, ErrBadK
	}
	u, err := unitCopy(q, x.dim)
	if err != nil {
		return nil, err
	}
	if len(x.entries) < x.opts.ExactBelow {
		return x.scan(u, k, x.entries), nil
	}
	x.hits = x.hits[:0]
	x.top = x.top[:0]
	r := max(rerankMin, rerankPerK*k)
	for _, s := range x.segs {
		g := s.g
		ef := int(math.Ceil(float64(x.opts.EfSearch) * math.Sqrt(float64(g.live)/float64(len(x.entries)))))
		for _, c := range g.search(u, k, ef) {
			x.top.offer(scanHit{est: c.sim, e: g.ent[c.id]}, r)
		}
		// Nodes not linked yet: scanned exactly.
		for id := g.linked; id < g.len(); id++ {
			if !g.dead[id] {
				e := g.ent[id]
				x.hits.offer(Hit{Key: e.key, Score: dot(u, e.vec)}, k)
			}
		}
	}
	// The graphs ranked by codes; the best are scored again exactly, so
	// the k best of them are ranked and reported as Exact would. Their
	// vectors lie anywhere in memory, so all are loaded before any is
	// used (as Embed does with its rows), which lets the misses overlap.
	x.vecs = x.vecs[:0]
	for _, c := range x.top {
		x.vecs = append(x.vecs, c.e.vec)
	}
	touchVecs(x.vecs)
	for i, c := range x.top {
		if c.e.slot < 0 || c.e.seg == nil {
			panic("vecidx: a graph search found a vector that is not current")
		}
		x.hits.offer(Hit{Key: c.e.key, Score: dot(u, x.vecs[i])}, k)
	}
	clear(x.top) // drop the entries
	clear(x.vecs)
	out := x.hits.sorted()
	// A key's vector is in one live node, so the merged hits are
	// distinct; check, since a duplicate would mean a lost update.
	for i := 1; i < len(out); i++ {
		if out[i].Key == out[i-1].Key {
			panic("vecidx: key found twice")
		}
	}
	return out, nil
}

// Exact is the brute-force search: every vector scored, the best k kept.
// It is the reference the approximate search is measured against. Invalid
// input (a k outside 1..KMax, a query Search would refuse) gives nil.
func (x *Index) Exact(q []float32, k int) []Hit {
	if k < 1 || k > KMax {
		return nil
	}
	u, err := unitCopy(q, x.dim)
	if err != nil {
		return nil
	}
	return x.scan(u, k, x.entries)
}

// Stats describes the index's size.
type Stats struct {
	Vectors  int   // keys
	Pending  int   // keys whose node is not linked yet (searched exactly)
	Segments int   // segments, each with a graph
	Nodes    int   // graph nodes, tombstones included
	Dead     int   // tombstones
	Layers   int   // layers of the tallest graph
	Bytes    int64 // estimated memory: vectors, graphs, key table
	// WorkLeft: units of deferred work left (links, compactions, merges;
	// Work's estimate), 0 once the index has settled.
	WorkLeft int
}

func (x *Index) Stats() Stats {
	s := Stats{Vectors: len(x.entries), Segments: len(x.segs), WorkLeft: x.remaining()}
	live := 0
	for _, sg := range x.segs {
		g := sg.g
		s.Nodes += g.len()
		s.Dead += g.deadN
		live += g.live
		s.Layers = max(s.Layers, g.top+1)
		s.Bytes += g.bytes()
		for id := g.linked; id < g.len(); id++ {
			if !g.dead[id] {
				s.Pending++
			}
		}
	}
	// Key table: per key its entry, a map slot and an entries slot, its
	// bytes and its float32 vector.
	const entryBytes = 64 + 48 + 8
	s.Bytes += int64(len(x.entries))*(entryBytes+int64(x.dim*4)) + x.keyBytes
	if live != s.Vectors {
		panic("vecidx: live nodes and keys differ")
	}
	return s
}

// String is a one-line summary for logs and status output.
func (s Stats) String() string {
	return fmt.Sprintf("vectors=%d pending=%d segments=%d nodes=%d dead=%d layers=%d bytes=%d",
		s.Vectors, s.Pending, s.Segments, s.Nodes, s.Dead, s.Layers, s.Bytes)
}

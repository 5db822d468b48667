package vecidx

import (
	"errors"
	"fmt"
	"slices"
)

// The Index maps keys to unit vectors and answers top-k cosine queries.
//
// A node calls Put and Remove in the same turn as the write they mirror, at
// tens of thousands of writes a second, and an HNSW insert costs far more
// than a write may spend. So the Index splits each write in two:
//
//   - Put stores the normalised vector in the key table at once and queues
//     the key as pending; Remove deletes the key from the table at once.
//     Either marks the key's old graph node (if it had one) deleted. Put
//     costs O(dim) and Remove O(1), plus a map operation (about 1.3 µs a
//     Put at 100 dimensions, key formatting included).
//   - Work(n) does the deferred part: it inserts pending vectors into the
//     graph, up to n of them, and steps a rebuild when one is running. The
//     host calls it from idle turns with a budget.
//
// A search never returns a key whose current vector is not the one it
// scored, nor a deleted key: a graph node is live exactly while it holds its
// key's current vector (any Put or Remove of the key marks it deleted), dead
// nodes are never reported, and a key whose current vector is not in a graph
// yet is pending, and pending vectors are scanned exactly by every search.
// The graph and pending results are merged, deduplicated by key and scored
// with the same dot product as Exact.
//
// Back-pressure: when more than PendingMax vectors are pending, each Put
// does two units of Work itself before returning, so the backlog (and with
// it the exact scan every search pays for the pending vectors) stays at
// about PendingMax however long writes outpace the idle budget; the cost is
// that such a Put takes two graph inserts' time (at 100k vectors of 100
// dimensions an insert takes about 0.1 ms of CPU, so sustained writes slow
// to about 10,000 a second until idle turns catch up).
//
// Garbage: deleted nodes stay in the graph as routing nodes, since cutting
// them out would need the neighbours' lists repaired. When the deleted
// nodes outnumber half the live ones (and at least rebuildDeadMin), the
// Index starts a rebuild: the graph becomes the old graph, frozen, and a
// new empty graph takes new inserts; each Work unit then alternates between
// a pending insert and copying one live node of the old graph into the new
// one (marking the old copy deleted). Searches query both graphs meanwhile.
// When the old graph has no live node left it is dropped. So dead nodes are
// at most about a third of a graph's nodes when no rebuild runs, and a
// rebuild's extra memory is one more graph of the live nodes.
//
// Below ExactBelow vectors in all, Search is Exact: a scan of a few thousand
// vectors is fast and exact. Work still builds the graph, so it is ready
// when the index grows past the threshold.
//
// An Index is used from one goroutine (the node's loop); it keeps scratch
// space between calls, so even searches must not run concurrently.
type Index struct {
	dim  int
	opts HNSWOptions
	rng  splitmix

	byKey   map[string]*entry
	entries []*entry // every key's current entry, in no particular order: the exact scan
	pending []*entry // entries whose vector is not in a graph yet

	cur       *graph // takes every insert
	old       *graph // while rebuilding: the frozen graph being copied into cur
	cursor    uint32 // while rebuilding: the next node of old to copy
	alternate bool   // Work's turn between pending inserts and rebuild copies

	keyBytes int64   // total length of the keys, for Stats
	hits     hitHeap // scratch for the searches
	// bulk: Put never does graph work itself (see Bulk).
	bulk bool
}

// entry is one key's current vector. Put makes a new entry for every new
// vector, so a graph node's entry is always the one it was inserted for,
// and its key and vector never change under it.
type entry struct {
	key  string
	vec  []float32 // unit vector; nil once the entry is no longer current
	slot int       // position in Index.entries, -1 once removed or replaced
	// Where the vector is: pendingAt ≥ 0 in Index.pending, or node in graph g.
	pendingAt int
	g         *graph
	node      uint32
}

// HNSWOptions sets the graph's shape and the Index's thresholds. Start from
// DefaultHNSWOptions; NewIndex panics on values outside their limits, since
// they are configuration, not input.
type HNSWOptions struct {
	M              int    // max neighbours per node per layer above 0 (layer 0: 2·M); 2..MMax
	EfConstruction int    // result-set size while inserting; 1..EfMax
	EfSearch       int    // result-set size while searching (at least k is used); 1..EfMax
	Seed           uint64 // seeds the level generator: same calls, same seed, same graph
	ExactBelow     int    // below this many vectors, Search is exact; ≥ 0
	PendingMax     int    // pending vectors beyond which Put does Work itself; ≥ 1
}

// Limits on options and queries.
const (
	MMax  = 64   // largest M
	EfMax = 4096 // largest EfConstruction and EfSearch
	KMax  = 1000 // largest k of a search
	// rebuildDeadMin keeps tiny graphs from rebuilding over a handful of
	// deleted nodes.
	rebuildDeadMin = 32
	// rerankPerK: a graph search scores its best rerankPerK·k nodes (by
	// their codes) exactly. The codes' error is about 0.001, so the true
	// k best are near the top of the result set: on value vectors 2·k
	// found as many of them as scoring the whole result set (EfSearch
	// 250), and on crowded synthetic vectors (nearest neighbours 0.001
	// apart) 3·k did (0.937 against 0.933 at 2·k and 0.851 at k), at a
	// fraction of the cost: each exact score reads a float32 vector from
	// anywhere in memory, and scoring all 250 took a quarter of a search.
	rerankPerK = 3
)

// DefaultHNSWOptions are chosen on dkv's real case at 100k vectors: value
// vectors of 1 KB texts of Zipf-drawn words embedded with the default
// model, and queries of 1–3 mid-frequency words (cmd/bench index, and
// BenchmarkBench100k here). Those vectors are spread over nearly all of
// their 100 dimensions (the top 48 principal components hold 74% of the
// variance) and the queries lie outside their distribution, which makes
// the graph work hard: at M = 16 recall@10 reached 0.95 only at EfSearch
// 400 (6,900 nodes reached per search), at M = 24 at 250 (6,300–6,500),
// at M = 32 at 150–200 (5,500–6,100), while an insert reaches about 1,300,
// 1,500–1,800 and 1,700–2,500 nodes. Recall is the figure with the least
// margin (a search at EfSearch 250 is still some 20 times faster than the
// exact scan in cmd/bench), so the options spend search time rather than
// insert time: M = 24, EfConstruction 24 and EfSearch 300 measured recall
// 0.960 (EfConstruction 32 at EfSearch 250: 0.957, for a fifth more insert
// time). ExactBelow 2048: a scan of 2048 vectors of 100 dimensions takes
// about 0.1 ms and is exact, while a graph search costs thousands of
// similarities whatever the size. PendingMax 4096 bounds the exact scan of
// pending vectors each search pays for to about 0.2 ms at 100 dimensions
// while absorbing a burst of some 4096 writes before Put does graph work
// itself.
func DefaultHNSWOptions() HNSWOptions {
	return HNSWOptions{
		M:              24,
		EfConstruction: 24,
		EfSearch:       300,
		Seed:           1,
		ExactBelow:     2048,
		PendingMax:     4096,
	}
}

func (o HNSWOptions) check() error {
	switch {
	case o.M < 2 || o.M > MMax:
		return fmt.Errorf("M %d outside 2..%d", o.M, MMax)
	case o.EfConstruction < 1 || o.EfConstruction > EfMax:
		return fmt.Errorf("EfConstruction %d outside 1..%d", o.EfConstruction, EfMax)
	case o.EfSearch < 1 || o.EfSearch > EfMax:
		return fmt.Errorf("EfSearch %d outside 1..%d", o.EfSearch, EfMax)
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
func NewIndex(dim int, o HNSWOptions) *Index {
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

// Reset empties the index and restarts its level generator from the seed,
// so that an index reset and refilled is the same as a new one.
func (x *Index) Reset() {
	x.rng = splitmix{s: x.opts.Seed}
	x.byKey = map[string]*entry{}
	x.entries = nil
	x.pending = nil
	x.cur = newGraph(x.dim, x.opts)
	x.old = nil
	x.cursor = 0
	x.alternate = false
	x.keyBytes = 0
}

// Dim is the dimension of the index's vectors.
func (x *Index) Dim() int { return x.dim }

// Len is the number of keys in the index.
func (x *Index) Len() int { return len(x.entries) }

// Put sets key's vector to v, normalised, replacing any vector it had. A
// vector of the wrong dimension, with a NaN or infinite component, or of
// length zero is refused and the key keeps its old vector. Putting the
// vector a key already has changes nothing (a rewritten value costs no
// graph work). Past PendingMax pending vectors, Put does two units of Work
// (see Index).
func (x *Index) Put(key string, v []float32) error {
	u, err := unitCopy(v, x.dim)
	if err != nil {
		return err
	}
	e := &entry{key: key, vec: u, pendingAt: -1, slot: -1}
	if prev, ok := x.byKey[key]; ok {
		if slices.Equal(prev.vec, u) {
			return nil
		}
		x.detach(prev)
		e.slot = prev.slot
		x.entries[e.slot] = e
		prev.slot = -1
	} else {
		e.slot = len(x.entries)
		x.entries = append(x.entries, e)
		x.keyBytes += int64(len(key))
	}
	x.byKey[key] = e
	e.pendingAt = len(x.pending)
	x.pending = append(x.pending, e)
	x.maybeRebuild()
	if len(x.pending) > x.opts.PendingMax && !x.bulk {
		x.Work(2)
	}
	return nil
}

// Bulk turns back-pressure off (on) or back on (off): while on, Put never
// does graph work, however many vectors are pending. A node rebuilding its
// indexes at start loads every value this way, so that a restart does not
// wait for the graph; Work builds it afterwards, and searches scan what is
// still pending exactly meanwhile.
func (x *Index) Bulk(on bool) { x.bulk = on }

// Remove deletes key's vector, if it has one.
func (x *Index) Remove(key string) {
	e, ok := x.byKey[key]
	if !ok {
		return
	}
	delete(x.byKey, key)
	x.keyBytes -= int64(len(key))
	x.detach(e)
	last := x.entries[len(x.entries)-1]
	x.entries[e.slot] = last
	last.slot = e.slot
	x.entries = x.entries[:len(x.entries)-1]
	e.slot = -1
	x.maybeRebuild()
}

// detach takes e's vector out of the pending queue or marks its graph node
// deleted: e is about to stop being its key's current entry.
func (x *Index) detach(e *entry) {
	if e.pendingAt >= 0 {
		last := x.pending[len(x.pending)-1]
		x.pending[e.pendingAt] = last
		last.pendingAt = e.pendingAt
		x.pending = x.pending[:len(x.pending)-1]
		e.pendingAt = -1
		return
	}
	if e.g == nil || e.g.ent[e.node] != e {
		panic("vecidx: entry neither pending nor in a graph")
	}
	e.g.markDead(e.node)
	e.g = nil
	// The dead node routes by its code alone and is never scored again,
	// so its vector can go now rather than at the rebuild.
	e.vec = nil
}

// maybeRebuild starts a rebuild when the current graph's deleted nodes
// outnumber half its live ones.
func (x *Index) maybeRebuild() {
	g := x.cur
	if x.old != nil || g.deadN < rebuildDeadMin || g.deadN <= g.live/2 {
		return
	}
	x.old = g
	x.cur = newGraph(x.dim, x.opts)
	x.cursor = 0
}

// Work does up to n units of deferred graph work — inserting a pending
// vector into the graph, or copying one live node during a rebuild — and
// returns how many units remain.
func (x *Index) Work(n int) (remaining int) {
	for done := 0; done < n; done++ {
		if x.old == nil && len(x.pending) == 0 {
			break
		}
		if x.old != nil && (len(x.pending) == 0 || x.alternate) {
			x.copyOne()
		} else {
			x.insertPending()
		}
		x.alternate = !x.alternate
	}
	return x.remaining()
}

func (x *Index) remaining() int {
	r := len(x.pending)
	if x.old != nil {
		r += x.old.live
	}
	return r
}

// insertPending moves the most recently queued pending vector into the
// graph. Which one goes first does not matter for results (every pending
// vector is scanned), and the end of the queue is the cheap one to take.
func (x *Index) insertPending() {
	e := x.pending[len(x.pending)-1]
	x.pending = x.pending[:len(x.pending)-1]
	e.pendingAt = -1
	x.place(e)
}

// place inserts e's vector into the current graph. The graph keeps only
// the vector's code; e keeps the vector, to score search results exactly.
func (x *Index) place(e *entry) {
	id := x.cur.insert(e, e.vec, &x.rng)
	e.g, e.node = x.cur, id
}

// copyOne copies the old graph's next live node into the current graph,
// and drops the old graph when none is left.
func (x *Index) copyOne() {
	old := x.old
	for x.cursor < uint32(old.len()) && old.dead[x.cursor] {
		x.cursor++
	}
	if x.cursor < uint32(old.len()) {
		id := x.cursor
		x.cursor++
		e := old.ent[id]
		if e.g != old || e.node != id {
			panic("vecidx: live node not its entry's current node")
		}
		old.markDead(id)
		x.place(e)
	}
	if old.live == 0 {
		x.old = nil
		x.cursor = 0
		x.maybeRebuild()
	}
}

// Search returns the k keys whose vectors are most similar to q, best first
// (ties by key ascending), with their cosine similarity. Below ExactBelow
// vectors it is Exact; above, the graph search is approximate: a key may be
// missed, but every key returned is present with the vector it was scored
// on, and its score is exact.
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
	for _, g := range []*graph{x.cur, x.old} {
		if g == nil {
			continue
		}
		// The graph ranks by its codes' approximate similarities; its best
		// rerankPerK·k nodes are scored again exactly, so the k best of
		// them are ranked and reported as Exact would.
		found := g.search(u, k, x.opts.EfSearch)
		for _, c := range found[:min(len(found), rerankPerK*k)] {
			e := g.ent[c.id]
			if g.dead[c.id] || e.g != g || e.node != c.id {
				panic("vecidx: graph search returned a dead node")
			}
			x.hits.offer(Hit{Key: e.key, Score: dot(u, e.vec)}, k)
		}
	}
	for _, e := range x.pending {
		x.hits.offer(Hit{Key: e.key, Score: dot(u, e.vec)}, k)
	}
	out := x.hits.sorted()
	// A key is in exactly one place (one graph or pending), so the merged
	// hits are distinct; check, since a duplicate would mean a lost update.
	for i := 1; i < len(out); i++ {
		if out[i].Key == out[i-1].Key {
			panic("vecidx: key found twice")
		}
	}
	return out, nil
}

// Exact is the brute-force search: every vector scored, the best k kept.
// It is the reference the graph search is measured against. Invalid input
// (a k outside 1..KMax, a query Search would refuse) gives nil.
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
	Vectors int   // keys
	Graph   int   // live graph nodes (keys whose vector is in a graph)
	Pending int   // keys whose vector waits for Work
	Deleted int   // deleted nodes kept for routing, old graph included
	Bytes   int64 // estimated memory: vectors, links, key table
	Layers  int   // layers of the current graph
}

func (x *Index) Stats() Stats {
	s := Stats{
		Vectors: len(x.entries),
		Pending: len(x.pending),
		Layers:  x.cur.top + 1,
	}
	for _, g := range []*graph{x.cur, x.old} {
		if g == nil {
			continue
		}
		s.Graph += g.live
		s.Deleted += g.deadN
		s.Bytes += g.bytes()
	}
	// Key table: per key its entry, a map slot and an entries slot, its
	// bytes and its float32 vector (the graphs hold only codes).
	const entryBytes = 96 + 48 + 8
	s.Bytes += int64(len(x.entries))*(entryBytes+int64(x.dim*4)) + x.keyBytes
	if s.Graph+s.Pending != s.Vectors {
		panic("vecidx: keys neither in a graph nor pending")
	}
	return s
}

// String is a one-line summary for logs and status output.
func (s Stats) String() string {
	return fmt.Sprintf("vectors=%d graph=%d pending=%d deleted=%d bytes=%d layers=%d",
		s.Vectors, s.Graph, s.Pending, s.Deleted, s.Bytes, s.Layers)
}

package vecidx

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// The Index maps keys to unit vectors and answers top-k cosine queries.
//
// A node calls Put and Remove in the same turn as the write they mirror,
// at tens of thousands of writes a second, so both must be cheap however
// large the index: that is why the index is an inverted file
// (partition.go) rather than a graph. An HNSW graph answered as well, but
// each insert searched the graph for the new node's neighbours and
// relinked them, about 0.12 ms of CPU at 100k vectors (most of it waiting
// for memory), which held durable writes with indexes to 0.3 of those
// without; and a replaced value left a dead node behind, which a rebuild
// had to insert again. Here a Put quantises the vector, finds its nearest
// centroid (one 8-bit similarity per centroid, about √n of them) and
// appends it to that centroid's list; a Remove swaps it out of its list.
// Nothing is deferred and nothing dead stays behind.
//
// What is deferred is training: the centroids come from k-means on a
// sample of the vectors (trainer.go), which the index redoes as it grows,
// and the move of every vector into the lists of new centroids. Work(n)
// does that in bounded units, which the host runs in idle turns. Until the
// first centroids exist (an index that is still small, or that is being
// rebuilt at start with Bulk on) vectors are pending, and every search
// scans the pending vectors exactly; during a move, a vector is in the
// old partition or the new one, and searches look in both.
//
// A search never returns a key whose current vector is not the one it
// scored, nor a removed key: a vector is in one place only (pending, or
// one list of one partition), it leaves that place when its key is
// removed or gets another vector, and the best candidates a scan finds by
// their codes are scored again with their entry's float32 vector, with
// the same dot product as Exact, before they are ranked.
//
// Back-pressure: when more than PendingMax vectors are pending (writes
// with no idle time while the first centroids are trained), each Put does
// two units of Work before returning, so the exact scan every search pays
// for pending vectors stays bounded.
//
// Below ExactBelow vectors in all, Search is Exact: a scan of a few
// thousand vectors is fast and exact. Work still trains the partition, so
// it is ready when the index grows past the threshold.
//
// An Index is used from one goroutine (the node's loop); it keeps scratch
// space between calls, so even searches must not run concurrently.
type Index struct {
	dim  int
	opts IndexOptions

	byKey   map[string]*entry
	entries []*entry // every key's current entry, in no particular order: the exact scan
	pending []*entry // entries in no partition yet

	cur   *partition // takes every new vector; nil before the first training
	old   *partition // while moving: the partition being emptied into cur
	train *trainer   // while training: the centroids for the next partition
	// trainDue: a training is wanted, and starts with the next unit of
	// Work, on a sample of the vectors there are then.
	trainDue bool
	// changes counts Puts and Removes since cur's training began: when
	// they outnumber the vectors driftChanges times, the data may have
	// drifted from its centroids, and the index trains again.
	changes int

	keyBytes int64 // total length of the keys, for Stats
	// bulk: Put never does Work itself (see Bulk).
	bulk bool

	// Scratch space for Put and the searches.
	fwd   []uint64 // a vector's forward 8-bit code
	nib   []uint64 // its nibble code
	query nibbleQuery
	top   scanHeap // a search's best candidates by estimate
	order []cand   // a partition's lists in order of their centroids' similarity
	vecs  [][]float32
	hits  hitHeap
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

// entry is one key and its current vector. A Put of another vector takes
// the entry out of its list (or the pending queue) before it changes the
// vector, and puts it back after.
type entry struct {
	key  string
	vec  []float32 // unit vector
	slot int       // position in Index.entries, -1 once removed
	// Where the vector is: pendingAt ≥ 0 in Index.pending, or position at
	// of list list of partition part.
	pendingAt int
	part      *partition
	list, at  int32
}

// IndexOptions set the Index's search effort and thresholds. Start from
// DefaultIndexOptions; NewIndex panics on values outside their limits,
// since they are configuration, not input.
type IndexOptions struct {
	// ScanShare is the share of the vectors a search ranks by their codes:
	// the lists of the centroids nearest to the query, nearest first, until
	// that many vectors are scanned. In (0, 1]; 1 scans every list.
	ScanShare float64
	// ScanMin is the least vectors a search scans, whatever the share:
	// with fewer vectors there are fewer lists, a query's neighbours lie
	// in a larger share of them, and a scan costs little anyway. ≥ 0.
	ScanMin    int
	ExactBelow int // below this many vectors, Search is exact; ≥ 0
	PendingMax int // pending vectors beyond which Put does Work itself; ≥ 1
}

// Limits on queries, and the index's constants.
const (
	KMax = 1000 // largest k of a search
	// rerankPerK, rerankMin: a search scores its best max(rerankMin,
	// rerankPerK·k) vectors by nibble estimate again exactly. A nibble
	// estimate is off by about 0.01: on dkv's value vectors the true top 10
	// were among the best 50 by estimate, but on crowded vectors (synthetic
	// clusters whose nearest neighbours lie 0.001 apart) 5·k found 89% of
	// what a full scan finds, 10·k 97%, 20·k 99.3%. Scoring 200 vectors
	// exactly costs some 30 µs, a small part of a search.
	rerankPerK = 20
	rerankMin  = 32
	// trainMin: the first centroids are trained once the index holds this
	// many vectors (or ExactBelow/2, whichever is more).
	trainMin = 16
	// regrowth: the index trains again when it holds this many times the
	// vectors of its last training (its lists then average twice the
	// length the new centroids give them).
	regrowth = 4
	// driftChanges: the index trains again after this many Puts and
	// Removes per vector (of the last training or now, the more), in case
	// the data has moved away from its centroids. Values overwritten with
	// others like them (dkv's usual case) do not need it, so it is rare:
	// at 100k vectors it costs a write some 60 similarities, about 1 µs.
	driftChanges = 4
	// listsMax caps the centroids: √n/3 up to 150M vectors.
	listsMax = 4096
	// unitSims is one unit of Work: about this many 8-bit similarities
	// (a k-means step, or moving vectors into new lists), some 0.1 ms on
	// a busy machine.
	unitSims = 4096
)

// DefaultIndexOptions are chosen on dkv's real case at 100k vectors: value
// vectors of 1 KB texts of Zipf-drawn words embedded with the default
// model, and queries of 1–3 mid-frequency words (cmd/bench index, and
// BenchmarkBench100k here). Those vectors are spread over nearly all of
// their 100 dimensions (the top 48 principal components hold 74% of the
// variance) and the queries lie outside their distribution, so a query's
// nearest values lie in many lists: with √n centroids, scanning the
// nearest lists up to a tenth of the vectors found 86% of the exact top
// 10, a fifth 95%, a quarter 96–97%; with the √n/3 the index trains (see
// lists), a third found 95%, 0.35 96.6%. Recall is the figure with the
// least margin, and a scan of nibble codes is cheap (a third of 100k
// vectors takes about 0.5 ms, a twentieth of the exact search's time in
// cmd/bench), so ScanShare is 0.35. ScanMin 10000: smaller indexes have
// fewer, relatively longer lists, and at 20k vectors 0.35 of them found
// only 95% (half, 97.7%). ExactBelow 2048: a scan of 2048 vectors of 100
// dimensions takes about 0.1 ms and is exact. PendingMax 4096 bounds the
// exact scan of pending vectors each search pays for to about 0.2 ms at
// 100 dimensions.
func DefaultIndexOptions() IndexOptions {
	return IndexOptions{
		ScanShare:  0.35,
		ScanMin:    10000,
		ExactBelow: 2048,
		PendingMax: 4096,
	}
}

func (o IndexOptions) check() error {
	switch {
	case !(o.ScanShare > 0 && o.ScanShare <= 1):
		return fmt.Errorf("ScanShare %v outside (0, 1]", o.ScanShare)
	case o.ScanMin < 0:
		return fmt.Errorf("ScanMin %d is negative", o.ScanMin)
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
	x.byKey = map[string]*entry{}
	x.entries = nil
	x.pending = nil
	x.cur, x.old, x.train = nil, nil, nil
	x.trainDue = false
	x.changes = 0
	x.keyBytes = 0
}

// Dim is the dimension of the index's vectors.
func (x *Index) Dim() int { return x.dim }

// Len is the number of keys in the index.
func (x *Index) Len() int { return len(x.entries) }

// Put sets key's vector to v, normalised, replacing any vector it had. A
// vector of the wrong dimension, with a NaN or infinite component, or of
// length zero is refused and the key keeps its old vector. Putting the
// vector a key already has changes nothing. Past PendingMax pending
// vectors, Put does two units of Work (see Index).
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
		// The key's entry takes the new vector: it leaves its list (or
		// the pending queue) first, so no search meets it half changed.
		x.detach(e)
		e.vec = u
	} else {
		e = &entry{key: key, vec: u, pendingAt: -1, slot: len(x.entries), list: -1, at: -1}
		x.entries = append(x.entries, e)
		x.keyBytes += int64(len(key))
		x.byKey[key] = e
	}
	if x.cur != nil {
		x.place(e)
	} else {
		e.pendingAt = len(x.pending)
		x.pending = append(x.pending, e)
	}
	x.changes++
	x.maybeTrain()
	if len(x.pending) > x.opts.PendingMax && !x.bulk {
		x.Work(2)
	}
	return nil
}

// Bulk turns back-pressure off (on) or back on (off): while on, Put never
// does Work, however many vectors are pending. A node rebuilding its
// indexes at start loads every value this way, so that a restart does not
// wait for training; Work trains afterwards, and searches scan what is
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
	x.changes++
	x.maybeTrain()
}

// detach takes e's vector out of the pending queue or its list: e is about
// to be removed or to take another vector.
func (x *Index) detach(e *entry) {
	if e.pendingAt >= 0 {
		last := x.pending[len(x.pending)-1]
		x.pending[e.pendingAt] = last
		last.pendingAt = e.pendingAt
		x.pending = x.pending[:len(x.pending)-1]
		e.pendingAt = -1
		return
	}
	if e.part == nil {
		panic("vecidx: entry neither pending nor in a partition")
	}
	e.part.remove(e)
}

// place puts e, pending or not yet anywhere, into its list of cur.
func (x *Index) place(e *entry) {
	p := x.cur
	x.fwd = slices.Grow(x.fwd[:0], p.words)[:p.words]
	x.nib = slices.Grow(x.nib[:0], p.nw)[:p.nw]
	_, s := encodeBoth(x.fwd, x.nib, e.vec, p.levels)
	p.add(e, p.nearest(x.fwd), x.nib, s)
}

// maybeTrain asks for a training when there is none and the index has no
// centroids yet but enough vectors for them, or has grown regrowth times
// past its last training, or has changed driftChanges times over since.
func (x *Index) maybeTrain() {
	if x.trainDue || x.train != nil || x.old != nil {
		return
	}
	n := len(x.entries)
	if n < x.trainMin() {
		return
	}
	if p := x.cur; p != nil && n < regrowth*p.trainN && x.changes < driftChanges*max(p.trainN, n) {
		return
	}
	x.trainDue = true
}

// trainMin is the least vectors the index trains centroids for.
func (x *Index) trainMin() int { return max(trainMin, x.opts.ExactBelow/2) }

// lists is the number of centroids to train for n vectors: √n/3. Fewer
// centroids make a Put and a training cheaper (a Put compares its vector
// with every centroid; a training costs about samplePerList·k²·
// trainIters similarities, and moving the vectors n·k) and lists longer,
// so that a search must scan a larger share for the same recall. At 100k
// vectors, from √n to √n/2 cost a Put 1.5 µs less and training half as
// much, for 0.004 of recall at the same scan share; to √n/3 a Put another
// 2–3 µs less and training a third less, for 0.01 of recall, which a scan
// share of 0.35 instead of 0.3 buys back. A Put's cost is every write's;
// a search's is paid by searches only.
func lists(n int) int { return min(listsMax, max(1, int(math.Round(math.Sqrt(float64(n))/3)))) }

// Work does up to n units of deferred work — a step of training, or
// moving vectors into the lists of the partition trained last — and
// returns how many units remain (an estimate: at least 1 while any work
// is left).
func (x *Index) Work(n int) (remaining int) {
	for range n {
		switch {
		case x.trainDue:
			// Sampling the vectors costs about what a unit does.
			x.trainDue = false
			if len(x.entries) >= x.trainMin() {
				x.train = newTrainer(x.dim, lists(len(x.entries)), x.entries)
				x.changes = 0
			}
		case x.train != nil:
			x.train.step(unitSims)
			if x.train.done() {
				if x.cur != nil {
					x.old = x.cur
				}
				x.cur = x.train.partition()
				x.train = nil
			}
		case x.cur != nil && (len(x.pending) > 0 || x.old != nil):
			x.move(x.movePerUnit(len(x.cur.lists)))
		default:
			return x.remaining()
		}
	}
	return x.remaining()
}

// movePerUnit is how many vectors one unit of Work moves into the lists of
// k centroids.
func (x *Index) movePerUnit(k int) int { return max(1, unitSims/k) }

// move places up to n vectors of the pending queue, then of the old
// partition, in cur; it drops the old partition once it is empty.
func (x *Index) move(n int) {
	for ; n > 0 && len(x.pending) > 0; n-- {
		e := x.pending[len(x.pending)-1]
		x.pending = x.pending[:len(x.pending)-1]
		e.pendingAt = -1
		x.place(e)
	}
	for ; n > 0 && x.old != nil; n-- {
		e := x.old.last()
		if e == nil {
			break
		}
		x.old.remove(e)
		x.place(e)
	}
	if x.old != nil && x.old.n == 0 {
		x.old = nil
		x.maybeTrain()
	}
}

func (x *Index) remaining() int {
	units, moving, k := 0, len(x.pending), 0
	if x.old != nil {
		moving += x.old.n
	}
	switch {
	case x.trainDue || x.train != nil:
		t := x.train
		if t == nil {
			units = 1
			k = lists(len(x.entries))
			units += (min(len(x.entries), samplePerList*k)*k*trainIters + unitSims - 1) / unitSims
		} else {
			k = t.k
			units = (t.left() + unitSims - 1) / unitSims
		}
		if x.cur != nil {
			moving += x.cur.n // to move once the new centroids are in
		}
	case x.cur != nil:
		k = len(x.cur.lists)
	default:
		return 0 // too few vectors to train: they stay pending
	}
	per := x.movePerUnit(k)
	return units + (moving+per-1)/per
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
	if x.cur != nil {
		r := max(rerankMin, rerankPerK*k)
		words, levels := codeWords(x.dim), codeLevels(x.dim)
		x.fwd = slices.Grow(x.fwd[:0], words)[:words]
		encode(x.fwd, u, levels)
		x.query.set(u)
		for _, p := range []*partition{x.cur, x.old} {
			if p != nil {
				budget := max(int(math.Ceil(x.opts.ScanShare*float64(p.n))), x.opts.ScanMin*p.n/len(x.entries))
				x.order = p.search(x.fwd, &x.query, budget, &x.top, r, x.order)
			}
		}
		// The scans ranked by estimate; the best are scored again exactly,
		// so the k best of them are ranked and reported as Exact would.
		// Their entries and vectors lie anywhere in memory, so each kind
		// is loaded for all of them before any is used (as Embed does with
		// its rows), which lets the cache misses overlap.
		x.vecs = x.vecs[:0]
		for _, c := range x.top {
			x.vecs = append(x.vecs, c.e.vec)
		}
		touchVecs(x.vecs)
		for i, c := range x.top {
			if c.e.slot < 0 || c.e.part == nil {
				panic("vecidx: a list holds a vector that is not current")
			}
			x.hits.offer(Hit{Key: c.e.key, Score: dot(u, x.vecs[i])}, k)
		}
		clear(x.top) // drop the entries
		clear(x.vecs)
	}
	for _, e := range x.pending {
		x.hits.offer(Hit{Key: e.key, Score: dot(u, e.vec)}, k)
	}
	out := x.hits.sorted()
	// A key is in exactly one place (one list or pending), so the merged
	// hits are distinct; check, since a duplicate would mean a lost update.
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
	Vectors int   // keys
	Listed  int   // keys whose vector is in a list
	Pending int   // keys whose vector is in no list yet (searched exactly)
	Moving  int   // listed vectors still in the lists of the old centroids
	Lists   int   // lists (centroids) new vectors go to; 0 before the first training
	Bytes   int64 // estimated memory: vectors, codes, centroids, key table
}

func (x *Index) Stats() Stats {
	s := Stats{
		Vectors: len(x.entries),
		Pending: len(x.pending),
	}
	if x.cur != nil {
		s.Listed += x.cur.n
		s.Lists = len(x.cur.lists)
		s.Bytes += x.cur.bytes()
	}
	if x.old != nil {
		s.Listed += x.old.n
		s.Moving = x.old.n
		s.Bytes += x.old.bytes()
	}
	if x.train != nil {
		s.Bytes += x.train.bytes()
	}
	// Key table: per key its entry, a map slot and an entries slot, its
	// bytes and its float32 vector.
	const entryBytes = 80 + 48 + 8
	s.Bytes += int64(len(x.entries))*(entryBytes+int64(x.dim*4)) + x.keyBytes
	if s.Listed+s.Pending != s.Vectors {
		panic("vecidx: keys neither listed nor pending")
	}
	return s
}

// String is a one-line summary for logs and status output.
func (s Stats) String() string {
	return fmt.Sprintf("vectors=%d listed=%d pending=%d moving=%d lists=%d bytes=%d",
		s.Vectors, s.Listed, s.Pending, s.Moving, s.Lists, s.Bytes)
}

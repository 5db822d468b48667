package vecidx

import (
	"math"
	"slices"
)

// A partition is an inverted file (Jégou, Douze and Schmid, "Product
// quantization for nearest neighbor search", IEEE TPAMI 33(1), 2011, §IV;
// the IVF of FAISS): a set of centroids, trained by k-means on the vectors
// (trainer.go), and per centroid the list of the vectors nearer to it than
// to any other. A vector goes into its list when it is put and leaves it
// when it is removed or replaced, at a cost of one similarity per centroid
// (about √n of them, a few microseconds at 100k vectors) and O(1) list
// work; nothing is ever left behind to clean up. A search scores the
// centroids, then scans the lists of the nearest ones, nearest first, until
// it has scanned a set share of all the vectors (IndexOptions.ScanShare),
// ranking them by their nibble codes (nibble.go); the Index scores the best
// of them again exactly.
//
// Centroids are compared with 8-bit codes (code.go): a vector's forward
// code against the centroids' reversed codes, one codeDot each.
type partition struct {
	dim, words, levels, nw int // nw: nibble code words

	cents  []uint64  // per list the reversed code of its centroid, words each
	centS  []float32 // the centroids' code scales
	lists  []list
	n      int // vectors in the lists
	trainN int // vectors in the index when the centroids were trained
}

// list is the vectors of one centroid: their nibble codes back to back
// (nw words each), scales and entries, in the same order. Each entry knows
// its place (entry.at), so removal swaps the last vector in.
type list struct {
	codes  []uint64
	scales []float32
	ents   []*entry
}

func newPartition(dim int, cents []float32, trainN int) *partition {
	k := len(cents) / dim
	p := &partition{
		dim:    dim,
		words:  codeWords(dim),
		levels: codeLevels(dim),
		nw:     nibbleWords(dim),
		cents:  make([]uint64, k*codeWords(dim)),
		centS:  make([]float32, k),
		lists:  make([]list, k),
		trainN: trainN,
	}
	for c := range k {
		rev := p.cents[c*p.words : (c+1)*p.words]
		p.centS[c] = encode(rev, cents[c*dim:(c+1)*dim], p.levels)
		reverse(rev, rev)
	}
	return p
}

// centSim is the similarity of centroid c to the vector of forward code
// fwd, up to the vector's own scale (which is the same for every
// centroid, so it does not change their order).
func (p *partition) centSim(fwd []uint64, c int) float32 {
	return float32(p.centS[c]) * float32(codeDot(fwd, p.cents[c*p.words:(c+1)*p.words:(c+1)*p.words]))
}

// nearest is the list of the centroid nearest to the vector of forward
// code fwd, the lowest-numbered one among equals.
func (p *partition) nearest(fwd []uint64) int {
	best, bestSim := 0, float32(math.Inf(-1))
	for c := range p.centS {
		if s := p.centSim(fwd, c); s > bestSim {
			best, bestSim = c, s
		}
	}
	return best
}

// add appends e, whose nibble code is nib with scale s, to list c.
func (p *partition) add(e *entry, c int, nib []uint64, s float32) {
	if e.part != nil || e.pendingAt >= 0 {
		panic("vecidx: entry added twice")
	}
	l := &p.lists[c]
	e.part, e.list, e.at = p, int32(c), int32(len(l.ents))
	l.codes = append(l.codes, nib[:p.nw]...)
	l.scales = append(l.scales, s)
	l.ents = append(l.ents, e)
	p.n++
}

// remove takes e out of its list: the list's last vector takes its place.
func (p *partition) remove(e *entry) {
	if e.part != p {
		panic("vecidx: entry removed from a partition it is not in")
	}
	l := &p.lists[e.list]
	i, last := int(e.at), len(l.ents)-1
	if l.ents[i] != e {
		panic("vecidx: entry not where it says it is")
	}
	if i != last {
		m := l.ents[last]
		l.ents[i] = m
		l.scales[i] = l.scales[last]
		copy(l.codes[i*p.nw:(i+1)*p.nw], l.codes[last*p.nw:])
		m.at = int32(i)
	}
	l.ents[last] = nil
	l.ents = l.ents[:last]
	l.scales = l.scales[:last]
	l.codes = l.codes[:last*p.nw]
	e.part, e.list, e.at = nil, -1, -1
	p.n--
}

// last is a vector of the partition, the last of its last non-empty list
// (the cheapest to take out), or nil when it is empty.
func (p *partition) last() *entry {
	for c := len(p.lists) - 1; c >= 0; c-- {
		if l := p.lists[c].ents; len(l) > 0 {
			return l[len(l)-1]
		}
	}
	return nil
}

// search offers top the vectors of the lists nearest to the query, whose
// forward code is fwd and packed form q, by their nibble estimates, until
// it has scanned budget vectors (at least one list). order is scratch
// space, returned for reuse.
func (p *partition) search(fwd []uint64, q *nibbleQuery, budget int, top *scanHeap, r int, order []cand) []cand {
	if p.n == 0 {
		return order
	}
	order = order[:0]
	for c := range p.lists {
		if len(p.lists[c].ents) > 0 {
			order = append(order, cand{p.centSim(fwd, c), uint32(c)})
		}
	}
	slices.SortFunc(order, cmpNearer)
	scanned := 0
	for _, c := range order {
		if scanned >= budget {
			break
		}
		l := &p.lists[c.id]
		scanned += len(l.ents)
		p.scan(l, q, top, r)
	}
	return order
}

// scan offers top every vector of l by its nibble estimate.
func (p *partition) scan(l *list, q *nibbleQuery, top *scanHeap, r int) {
	nw := p.nw
	codes := l.codes
	h := *top
	// Most vectors lose to the r-th best by estimate: skip the heap for
	// them (what offer would do, without the call).
	floor := float32(math.Inf(-1))
	if len(h) == r {
		floor = h[0].est
	}
	for i, s := range l.scales {
		est := codeSim(q.scale, s, q.dot(codes[i*nw:(i+1)*nw:(i+1)*nw]))
		if est <= floor {
			continue
		}
		h.offer(scanHit{est, l.ents[i]}, r)
		if len(h) == r {
			floor = h[0].est
		}
	}
	*top = h
}

// bytes estimates the partition's memory: centroids and lists.
func (p *partition) bytes() int64 {
	b := int64(cap(p.cents))*8 + int64(cap(p.centS))*4
	for _, l := range p.lists {
		b += int64(cap(l.codes))*8 + int64(cap(l.scales))*4 + int64(cap(l.ents))*8 + 72
	}
	return b
}

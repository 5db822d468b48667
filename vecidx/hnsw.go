package vecidx

import (
	"math"
	"slices"
)

// The graph is a Hierarchical Navigable Small World graph as described by
// Malkov and Yashunin ("Efficient and robust approximate nearest neighbor
// search using Hierarchical Navigable Small World graphs", arXiv:1603.09320,
// 2018): every node gets a random top level with P(level ≥ l) = exp(-l/mL),
// mL = 1/ln(M); a search descends greedily from the top layer's entry point
// and runs a best-first search with a bounded result set (ef) in layer 0;
// an insert links the new node in each of its layers to neighbours chosen by
// the paper's heuristic (Algorithm 4, with keepPrunedConnections and without
// extendCandidates) and links them back.
//
// Three things differ from the paper, all for cost:
//
//   - Similarities are those of the nodes' codes (code.go), not of their
//     float32 vectors: cheaper to compute and to fetch from memory. The
//     Index scores what a search returns with the float32 vectors.
//   - A search loads the codes of all of a node's unvisited neighbours
//     before it scores any of them (fetch), so that their cache misses
//     overlap instead of following one another.
//   - A neighbour whose list is full is not re-pruned from scratch (which
//     costs O(list²) similarities, most of an insert's time). Each list
//     keeps its similarities to its owner, and the new node goes in by the
//     heuristic's own test against the list as it stands (linkBack): left
//     out if a nearer neighbour is nearer to it than the owner is, else it
//     takes the place of the farthest neighbour it hides, or of the
//     farthest of all. That costs at most one similarity per neighbour.
//
// Similarity is the dot product of unit vectors: "nearer" means a higher
// dot product. Nodes are numbered 0, 1, 2, … in the order they are added
// (uint32), and linked into the graph in that order, later: a node added
// but not linked yet (id ≥ linked) is in no list and no search reaches it
// (the segment scans it exactly; see segment.go). A node is never removed
// from a graph: a deleted node (a tombstone) stays as a routing node, is
// skipped in results, and goes when its segment is compacted (index.go).

const (
	// levelMax caps the random level. With M=2 (the smallest M allowed) a
	// level above 31 has probability 2^-32 per node; the cap only guards the
	// uint8 and the per-node slice sizes against a degenerate generator.
	levelMax = 31
	// nodesMax bounds a graph's node count so ids fit in uint32 with room
	// to spare for arithmetic on them.
	nodesMax = 1<<31 - 1
	// chunkShift sets how many node codes share one chunk (1024). Chunks
	// never move once allocated, so a code's slice stays valid while the
	// graph grows.
	chunkShift = 10
	chunkNodes = 1 << chunkShift
	chunkMask  = chunkNodes - 1
)

// graph is one HNSW graph: a segment's. It holds each node's code, level,
// links and deleted flag, and the entry of the key it was added for.
type graph struct {
	dim            int
	words          int     // nibbleWords(dim)
	stride         int     // words per node in a chunk: the scale, then the code
	m              int     // links per node in layers above 0 (and for a new node in every layer)
	m0             int     // links per node in layer 0: 2·m, as the paper recommends
	efConstruction int     // result-set size while inserting
	levelMult      float64 // mL = 1/ln(M)
	// simpleSelect swaps the heuristic for the paper's simple selection
	// (the m nearest, Algorithm 3), and linkBack's test for keeping the
	// nearest. Only a test sets it, to show what the heuristic is worth on
	// clustered data.
	simpleSelect bool

	ent    []*entry   // the entry each node was inserted for
	level  []uint8    // each node's top layer
	dead   []bool     // deleted (removed, or replaced by a newer vector): routing only
	codes  [][]uint64 // per node its code's scale (float32 bits) then the code; chunkNodes per chunk
	links0 []uint32   // layer 0: per node, a count then m0 ids (stride m0+1)
	sims0  []float32  // layer 0: per node, the m0 links' similarities to it (stride m0)
	upper  []upperLinks

	entry  uint32 // entry point: a node on the top layer
	top    int    // top layer, -1 while no node is linked
	live   int    // nodes not dead
	deadN  int    // nodes dead
	linked int    // nodes 0..linked-1 are linked; the rest wait for link
	// simsDone counts the similarities computed, by which the Index
	// measures its units of Work.
	simsDone uint64

	// Scratch space reused by every insert and search: the graph is used
	// from one goroutine only.
	// visited holds per node the stamp of the last search that reached it,
	// so that a search need not clear it first. 16 bits keep it small
	// enough to stay in the cache (200 KB at 100k nodes); it is cleared
	// when the stamp wraps, once every 65,535 searches.
	visited []uint16
	stamp   uint16
	near    nearHeap
	far     farHeap
	found   []cand        // a searchLayer result, nearest first
	eps     []cand        // entry points for the next layer
	sel     []cand        // the neighbours chosen for a new node
	skipped []cand        // candidates the heuristic set aside
	batch   []uint32      // a node's neighbours not visited yet
	query   nibbleQuery   // the vector searched for, or the node being linked
	kept    []nibbleQuery // the heuristic's kept candidates, as queries
	fetched uint64        // fetch's loads end here, so that they are not optimised away
}

// upperLinks are a node's lists in layers 1..level: per layer a count then
// m ids (stride m+1), and the m links' similarities (stride m). Empty at
// level 0.
type upperLinks struct {
	ids  []uint32
	sims []float32
}

func newGraph(dim, m, efConstruction int) *graph {
	return &graph{
		dim:            dim,
		words:          nibbleWords(dim),
		stride:         1 + nibbleWords(dim),
		m:              m,
		m0:             2 * m,
		efConstruction: efConstruction,
		levelMult:      1 / math.Log(float64(m)),
		top:            -1,
	}
}

func (g *graph) len() int { return len(g.level) }

// node is node id's scale word and forward code, side by side so that a
// similarity reads one stretch of memory.
func (g *graph) node(id uint32) []uint64 {
	c := g.codes[id>>chunkShift]
	off := int(id&chunkMask) * g.stride
	return c[off : off+g.stride : off+g.stride]
}

// code is node id's forward code.
func (g *graph) code(id uint32) []uint64 { return g.node(id)[1 : 1+g.words] }

// scale is node id's code scale.
func (g *graph) scale(id uint32) float32 { return math.Float32frombits(uint32(g.node(id)[0])) }

// copies reports whether nodes a and b have the same code and scale: the
// same vector as far as the graph can tell (the same text stored under
// two keys, most often).
func (g *graph) copies(a, b uint32) bool { return slices.Equal(g.node(a), g.node(b)) }

// sim is the similarity of node id to the query code.
func (g *graph) sim(id uint32) float32 {
	g.simsDone++
	n := g.node(id)
	return codeSim(g.query.scale, math.Float32frombits(uint32(n[0])), g.query.dot(n[1:1+g.words]))
}

// setQuery makes v (a unit vector) the query.
func (g *graph) setQuery(v []float32) { g.query.set(v) }

// setQueryNode makes node id's code the query.
func (g *graph) setQueryNode(id uint32) { g.query.setCode(g.code(id), g.scale(id), g.dim) }

// list is node id's neighbour list in layer lc, with its count in ids[0]
// and room for the layer's limit, and the links' similarities. Both alias
// the graph's storage.
func (g *graph) list(id uint32, lc int) (ids []uint32, sims []float32) {
	if lc == 0 {
		base := int(id) * (g.m0 + 1)
		sb := int(id) * g.m0
		return g.links0[base : base+1+g.m0 : base+1+g.m0], g.sims0[sb : sb+g.m0 : sb+g.m0]
	}
	u := g.upper[id]
	base := (lc - 1) * (g.m + 1)
	sb := (lc - 1) * g.m
	return u.ids[base : base+1+g.m : base+1+g.m], u.sims[sb : sb+g.m : sb+g.m]
}

// links is node id's neighbour list in layer lc. It aliases the graph's
// storage: it is valid until the list is next changed.
func (g *graph) links(id uint32, lc int) []uint32 {
	ids, _ := g.list(id, lc)
	return ids[1 : 1+ids[0]]
}

// setLinks replaces node id's neighbour list in layer lc.
func (g *graph) setLinks(id uint32, lc int, ns []cand) {
	ids, sims := g.list(id, lc)
	if len(ns) > len(sims) {
		panic("vecidx: neighbour list over its limit")
	}
	ids[0] = uint32(len(ns))
	for i, c := range ns {
		if c.id == id {
			panic("vecidx: a node linked to itself")
		}
		ids[1+i] = c.id
		sims[i] = c.sim
	}
}

// randomLevel draws a node's top layer: floor(-ln(u)·mL), u uniform in (0,1].
func (g *graph) randomLevel(r *splitmix) int {
	l := int(-math.Log(r.unit()) * g.levelMult)
	return min(l, levelMax)
}

// add appends a node with v's code at the given level, unlinked: link
// links it later.
func (g *graph) add(e *entry, v []float32, level int) uint32 {
	n := len(g.level)
	if n >= nodesMax {
		panic("vecidx: graph full")
	}
	id := uint32(n)
	if n&chunkMask == 0 {
		g.codes = append(g.codes, make([]uint64, chunkNodes*g.stride))
	}
	nd := g.node(id)
	nd[0] = uint64(math.Float32bits(encodeNibbles(nd[1:], v)))
	g.ent = append(g.ent, e)
	g.level = append(g.level, uint8(level))
	g.dead = append(g.dead, false)
	g.links0 = append(g.links0, make([]uint32, g.m0+1)...)
	g.sims0 = append(g.sims0, make([]float32, g.m0)...)
	var up upperLinks
	if level > 0 {
		up.ids = make([]uint32, level*(g.m+1))
		up.sims = make([]float32, level*g.m)
	}
	g.upper = append(g.upper, up)
	g.visited = append(g.visited, 0)
	g.live++
	return id
}

// markDead turns a live node into a routing-only node.
func (g *graph) markDead(id uint32) {
	if g.dead[id] {
		panic("vecidx: node deleted twice")
	}
	g.dead[id] = true
	g.live--
	g.deadN++
}

// link links the next unlinked node into the graph (the paper's Algorithm
// 1, INSERT, for a node whose level add drew). A node deleted before its
// turn is left out: nothing links to it, and no search reaches it.
func (g *graph) link() {
	id := uint32(g.linked)
	if g.linked >= g.len() {
		panic("vecidx: link with no node to link")
	}
	g.linked++
	if g.dead[id] {
		return
	}
	level := int(g.level[id])
	if g.top < 0 {
		g.entry, g.top = id, level
		return
	}
	g.setQueryNode(id)
	ep := cand{g.sim(g.entry), g.entry}
	for lc := g.top; lc > level; lc-- {
		ep = g.greedy(ep, lc)
	}
	g.eps = append(g.eps[:0], ep)
	for lc := min(g.top, level); lc >= 0; lc-- {
		found := g.searchLayer(g.eps, g.efConstruction, lc, false)
		g.sel = g.heuristic(found, g.m, g.sel[:0])
		g.setLinks(id, lc, g.sel)
		for _, s := range g.sel {
			g.linkBack(s.id, id, s.sim, lc)
		}
		g.eps = append(g.eps[:0], found...)
	}
	if level > g.top {
		g.entry, g.top = id, level
	}
}

// linkBack makes to, the node being inserted (the query code), a
// neighbour of from in layer lc; sim is their similarity. A full list
// takes to by the heuristic's test against the list as it stands: to is
// left out if a neighbour nearer to from than to is nearer to to than
// from is (it is reached through that neighbour); otherwise it replaces
// the farthest neighbour that it hides in the same way, or if it hides
// none the farthest neighbour of all, unless to is the farthest itself.
// The full re-pruning of the paper would reconsider every pair in the
// list; this costs at most one similarity per neighbour, and measured the
// same recall on dkv's value vectors.
func (g *graph) linkBack(from, to uint32, sim float32, lc int) {
	ids, sims := g.list(from, lc)
	n := int(ids[0])
	if n < len(sims) {
		ids[1+n] = to
		sims[n] = sim
		ids[0] = uint32(n + 1)
		return
	}
	ns, ss := ids[1:1+n], sims[:n]
	tc := cand{sim, to}
	// Farther than every neighbour, to can hide none of them and would be
	// the one to go: decided from the kept similarities alone, which is the
	// common case and reads no code.
	far := 0
	for i := 1; i < n; i++ {
		if nearer(cand{ss[far], ns[far]}, cand{ss[i], ns[i]}) {
			far = i
		}
	}
	if nearer(cand{ss[far], ns[far]}, tc) {
		return
	}
	evict := far // the neighbour to replace
	if !g.simpleSelect {
		hidden := -1 // the farthest neighbour that to hides
		self := g.sim(to)
		for i, nb := range ns {
			c := cand{ss[i], nb}
			d := g.sim(nb)
			if d == self && g.copies(nb, to) {
				// A copy of to is a neighbour already, and reaches to's
				// neighbours as well as to would. The tests below, being
				// strict, let copies through: a value stored under
				// thousands of keys filled every list among its copies
				// with more copies, evicting each link out of the group,
				// and a search that entered the group found nothing else
				// (found by review: recall 0.04 on a tenth of values
				// near a query among copies of one other).
				return
			}
			if nearer(c, tc) {
				if d > sim {
					return // hidden behind nb
				}
			} else if d > c.sim && (hidden < 0 || nearer(cand{ss[hidden], ns[hidden]}, c)) {
				hidden = i
			}
		}
		if hidden >= 0 {
			evict = hidden
		}
	}
	ns[evict] = to
	ss[evict] = sim
}

// heuristic is the paper's SELECT-NEIGHBORS-HEURISTIC (Algorithm 4) with
// keepPrunedConnections: from candidates sorted nearest first (similarities
// to the base vector), it keeps a candidate only if it is nearer to the base
// than to every neighbour kept so far, which spreads the links over
// directions instead of spending them all inside one cluster; then it tops
// the list up to m with the set-aside candidates, nearest first. It appends
// to out and returns it.
func (g *graph) heuristic(cands []cand, m int, out []cand) []cand {
	if g.simpleSelect {
		return append(out, cands[:min(m, len(cands))]...)
	}
	// The kept candidates as queries, so that each test is one dot
	// product of a candidate's code with one of them.
	if len(g.kept) < m {
		g.kept = append(g.kept, make([]nibbleQuery, m-len(g.kept))...)
	}
	base := len(out)
	skipped := g.skipped[:0]
	for _, c := range cands {
		if len(out)-base >= m {
			break
		}
		code, s := g.code(c.id), g.scale(c.id)
		keep := true
		for i, k := range out[base:] {
			g.simsDone++
			// A copy of a kept neighbour (ties with it, and has its code)
			// is set aside as one nearer to it would be: the strict test
			// alone kept every copy of the base's vector, and a list of
			// copies links nowhere else (see linkBack).
			if sk := codeSim(s, g.kept[i].scale, g.kept[i].dot(code)); sk > c.sim || sk == c.sim && g.copies(c.id, k.id) {
				keep = false
				break
			}
		}
		if keep {
			k := len(out) - base
			g.kept[k].setCode(code, s, g.dim)
			out = append(out, c)
		} else {
			skipped = append(skipped, c)
		}
	}
	for _, c := range skipped {
		if len(out)-base >= m {
			break
		}
		out = append(out, c)
	}
	g.skipped = skipped
	return out
}

// greedy walks layer lc from ep to a local best for the query: the paper's
// SEARCH-LAYER with ef = 1, as used above a node's own level.
func (g *graph) greedy(ep cand, lc int) cand {
	for changed := true; changed; {
		changed = false
		for _, n := range g.links(ep.id, lc) {
			c := cand{g.sim(n), n}
			if nearer(c, ep) {
				ep = c
				changed = true
			}
		}
	}
	return ep
}

// searchLayer is the paper's SEARCH-LAYER (Algorithm 2): a best-first walk
// of layer lc from eps for the query that keeps the ef nearest nodes seen.
// With liveOnly, dead nodes are still walked through (they keep the graph
// connected) but do not enter the result set, so a query gets ef live nodes
// even where deleted ones crowd the neighbourhood. It returns the result
// nearest first, in g.found.
func (g *graph) searchLayer(eps []cand, ef, lc int, liveOnly bool) []cand {
	g.stamp++
	if g.stamp == 0 { // wrapped: old stamps could collide
		clear(g.visited)
		g.stamp = 1
	}
	stamp := g.stamp
	near, far := g.near[:0], g.far[:0]
	for _, ep := range eps {
		if g.visited[ep.id] == stamp {
			continue
		}
		g.visited[ep.id] = stamp
		near.push(ep)
		if !liveOnly || !g.dead[ep.id] {
			far.push(ep)
			if len(far) > ef {
				far.pop()
			}
		}
	}
	for len(near) > 0 {
		c := near.pop()
		if len(far) >= ef && nearer(far[0], c) {
			break // every node left on the frontier is farther than the result set
		}
		batch := g.batch[:0]
		for _, n := range g.links(c.id, lc) {
			if g.visited[n] != stamp {
				g.visited[n] = stamp
				batch = append(batch, n)
			}
		}
		g.batch = batch
		g.fetch(batch)
		for _, n := range batch {
			nc := cand{g.sim(n), n}
			if len(far) < ef || nearer(nc, far[0]) {
				near.push(nc)
				if !liveOnly || !g.dead[n] {
					far.push(nc)
					if len(far) > ef {
						far.pop()
					}
				}
			}
		}
	}
	found := slices.Grow(g.found[:0], len(far))[:len(far)]
	for i := len(found) - 1; i >= 0; i-- {
		found[i] = far.pop()
	}
	g.near, g.far, g.found = near, far, found
	return found
}

// fetch reads one word of every cache line of the nodes' codes before any
// similarity is computed. At 100k nodes the codes do not fit the cache, and
// a node's neighbours lie anywhere in memory; loads that do not depend on
// each other let the processor fetch all those lines at once, where
// computing each similarity in turn would wait for each node's lines in
// turn. (Go has no prefetch instruction; this is the portable way to get
// one.) It halved the time of a search at 100k vectors. Small graphs get
// it too: a segment's graph of 4,096 nodes (about 1.3 MB with its lists)
// stays in the cache in a benchmark of links alone, where fetch cost 15%
// of a link, but not in a server, where requests, the store and the
// full-text index pass through the cache between two links: there it
// gave 1.03–1.05 times the indexed writes a second at 0.95–0.98 times the
// CPU (cmd/bench index, 30 s a server, beside the build that fetched only
// in graphs of over 8,192 nodes; the same build against itself: 1.00).
func (g *graph) fetch(ids []uint32) {
	const lineWords = 8 // 64-byte lines
	var x uint64
	for _, id := range ids {
		c := g.node(id)[:1+g.words]
		for i := 0; i < len(c); i += lineWords {
			x |= c[i]
		}
		x |= c[len(c)-1]
	}
	g.fetched ^= x
}

// search returns up to max(ef, k) live linked nodes near q (a unit vector),
// nearest first by their codes' similarity, searching layer 0 with a
// result set of max(ef, k) (the paper's Algorithm 5). The slice is scratch
// space, valid until the next call.
func (g *graph) search(q []float32, k, ef int) []cand {
	if g.live == 0 || g.top < 0 {
		return nil
	}
	g.setQuery(q)
	ep := cand{g.sim(g.entry), g.entry}
	for lc := g.top; lc > 0; lc-- {
		ep = g.greedy(ep, lc)
	}
	g.eps = append(g.eps[:0], ep)
	return g.searchLayer(g.eps, max(ef, k), 0, true)
}

// bytes estimates the graph's memory: codes, links and per-node arrays.
func (g *graph) bytes() int64 {
	b := int64(len(g.codes)) * chunkNodes * int64(g.stride) * 8
	b += int64(cap(g.links0))*4 + int64(cap(g.sims0))*4
	for _, u := range g.upper {
		b += int64(cap(u.ids))*4 + int64(cap(u.sims))*4 + 48
	}
	b += int64(cap(g.ent))*8 + int64(cap(g.level)) + int64(cap(g.dead)) + int64(cap(g.visited))*2
	return b
}

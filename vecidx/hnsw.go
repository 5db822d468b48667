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
// extendCandidates), links them back, and prunes with the same heuristic any
// neighbour whose list outgrows its limit (M above layer 0, 2·M in layer 0).
//
// Similarity is the dot product of unit vectors: "nearer" means a higher
// dot product. Nodes are numbered 0, 1, 2, … in insertion order (uint32).
// A node is never removed from a graph: a deleted node stays as a routing
// node, is skipped in results, and disappears when the Index rebuilds the
// graph (see index.go).

const (
	// levelMax caps the random level. With M=2 (the smallest M allowed) a
	// level above 31 has probability 2^-32 per node; the cap only guards the
	// uint8 and the per-node slice sizes against a degenerate generator.
	levelMax = 31
	// nodesMax bounds a graph's node count so ids fit in uint32 with room
	// to spare for arithmetic on them.
	nodesMax = 1<<31 - 1
	// chunkShift sets how many node vectors share one chunk (1024). Chunks
	// never move once allocated, so a vector's slice stays valid while the
	// graph grows, and neighbours' vectors sit close together in memory.
	chunkShift = 10
	chunkNodes = 1 << chunkShift
	chunkMask  = chunkNodes - 1
)

// graph is one HNSW graph. It holds each node's vector, level, links and
// deleted flag, and the entry of the key it was inserted for.
type graph struct {
	dim            int
	m              int     // links per node in layers above 0 (and for a new node in every layer)
	m0             int     // links per node in layer 0: 2·m, as the paper recommends
	efConstruction int     // result-set size while inserting
	levelMult      float64 // mL = 1/ln(M)
	// simpleSelect swaps the heuristic for the paper's simple selection
	// (the m nearest, Algorithm 3). Only a test sets it, to show what the
	// heuristic is worth on clustered data.
	simpleSelect bool

	ent    []*entry    // the entry each node was inserted for
	level  []uint8     // each node's top layer
	dead   []bool      // deleted (removed, or replaced by a newer vector): routing only
	links0 []uint32    // layer 0: per node, a count then m0 ids (stride m0+1)
	upper  [][]uint32  // layers 1..level: per layer a count then m ids (stride m+1); nil at level 0
	chunks [][]float32 // node vectors, chunkNodes per chunk

	entry uint32 // entry point: a node on the top layer
	top   int    // top layer, -1 while the graph is empty
	live  int    // nodes not dead
	deadN int    // nodes dead

	// Scratch space reused by every insert and search: the graph is used
	// from one goroutine only.
	visited []uint32 // per node, the stamp of the last search that reached it
	stamp   uint32
	near    nearHeap
	far     farHeap
	found   []cand // a searchLayer result, nearest first
	eps     []cand // entry points for the next layer
	sel     []cand // the neighbours chosen for a new node
	prune   []cand // a full neighbour list being pruned
	kept    []cand // the heuristic's choice while pruning
	skipped []cand // candidates the heuristic set aside
}

func newGraph(dim int, o HNSWOptions) *graph {
	return &graph{
		dim:            dim,
		m:              o.M,
		m0:             2 * o.M,
		efConstruction: o.EfConstruction,
		levelMult:      1 / math.Log(float64(o.M)),
		top:            -1,
	}
}

func (g *graph) len() int { return len(g.level) }

// vec is node id's vector.
func (g *graph) vec(id uint32) []float32 {
	c := g.chunks[id>>chunkShift]
	off := int(id&chunkMask) * g.dim
	return c[off : off+g.dim : off+g.dim]
}

// links is node id's neighbour list in layer lc. It aliases the graph's
// storage: it is valid until the list is next changed.
func (g *graph) links(id uint32, lc int) []uint32 {
	if lc == 0 {
		base := int(id) * (g.m0 + 1)
		n := int(g.links0[base])
		return g.links0[base+1 : base+1+n]
	}
	u := g.upper[id]
	base := (lc - 1) * (g.m + 1)
	n := int(u[base])
	return u[base+1 : base+1+n]
}

// setLinks replaces node id's neighbour list in layer lc.
func (g *graph) setLinks(id uint32, lc int, ns []cand) {
	var dst []uint32
	if lc == 0 {
		if len(ns) > g.m0 {
			panic("vecidx: layer-0 neighbour list over its limit")
		}
		base := int(id) * (g.m0 + 1)
		dst = g.links0[base : base+1+g.m0]
	} else {
		if len(ns) > g.m {
			panic("vecidx: neighbour list over its limit")
		}
		base := (lc - 1) * (g.m + 1)
		dst = g.upper[id][base : base+1+g.m]
	}
	dst[0] = uint32(len(ns))
	for i, c := range ns {
		if c.id == id {
			panic("vecidx: a node linked to itself")
		}
		dst[1+i] = c.id
	}
}

// appendLink adds to as a neighbour of from in layer lc, which has room.
func (g *graph) appendLink(from, to uint32, lc int) {
	var dst []uint32
	if lc == 0 {
		base := int(from) * (g.m0 + 1)
		dst = g.links0[base : base+1+g.m0]
	} else {
		base := (lc - 1) * (g.m + 1)
		dst = g.upper[from][base : base+1+g.m]
	}
	n := dst[0]
	dst[1+n] = to
	dst[0] = n + 1
}

// randomLevel draws a node's top layer: floor(-ln(u)·mL), u uniform in (0,1].
func (g *graph) randomLevel(r *splitmix) int {
	l := int(-math.Log(r.unit()) * g.levelMult)
	return min(l, levelMax)
}

// add appends a node with a copy of v at the given level, unlinked.
func (g *graph) add(e *entry, v []float32, level int) uint32 {
	n := len(g.level)
	if n >= nodesMax {
		panic("vecidx: graph full")
	}
	id := uint32(n)
	if n&chunkMask == 0 {
		g.chunks = append(g.chunks, make([]float32, chunkNodes*g.dim))
	}
	copy(g.vec(id), v)
	g.ent = append(g.ent, e)
	g.level = append(g.level, uint8(level))
	g.dead = append(g.dead, false)
	g.links0 = append(g.links0, make([]uint32, g.m0+1)...)
	var up []uint32
	if level > 0 {
		up = make([]uint32, level*(g.m+1))
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

// insert adds v (a unit vector) for e as a new node and links it into the
// graph (the paper's Algorithm 1). It returns the node's id.
func (g *graph) insert(e *entry, v []float32, r *splitmix) uint32 {
	level := g.randomLevel(r)
	id := g.add(e, v, level)
	if g.top < 0 {
		g.entry, g.top = id, level
		return id
	}
	q := g.vec(id)
	ep := cand{dot(q, g.vec(g.entry)), g.entry}
	for lc := g.top; lc > level; lc-- {
		ep = g.greedy(q, ep, lc)
	}
	g.eps = append(g.eps[:0], ep)
	for lc := min(g.top, level); lc >= 0; lc-- {
		found := g.searchLayer(q, g.eps, g.efConstruction, lc, false)
		g.sel = g.heuristic(found, g.m, g.sel[:0])
		g.setLinks(id, lc, g.sel)
		maxLinks := g.m
		if lc == 0 {
			maxLinks = g.m0
		}
		for _, s := range g.sel {
			g.linkBack(s.id, id, lc, maxLinks)
		}
		g.eps = append(g.eps[:0], found...)
	}
	if level > g.top {
		g.entry, g.top = id, level
	}
	return id
}

// linkBack makes to a neighbour of from in layer lc. When from's list is
// full, the list plus to is cut back to maxLinks by the heuristic, measured
// from from's vector (the paper's shrinking of eConn).
func (g *graph) linkBack(from, to uint32, lc, maxLinks int) {
	ns := g.links(from, lc)
	if len(ns) < maxLinks {
		g.appendLink(from, to, lc)
		return
	}
	base := g.vec(from)
	g.prune = g.prune[:0]
	for _, n := range ns {
		g.prune = append(g.prune, cand{dot(base, g.vec(n)), n})
	}
	g.prune = append(g.prune, cand{dot(base, g.vec(to)), to})
	slices.SortFunc(g.prune, cmpNearer)
	g.kept = g.heuristic(g.prune, maxLinks, g.kept[:0])
	g.setLinks(from, lc, g.kept)
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
	skipped := g.skipped[:0]
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		vc := g.vec(c.id)
		keep := true
		for _, r := range out {
			if dot(vc, g.vec(r.id)) > c.sim {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, c)
		} else {
			skipped = append(skipped, c)
		}
	}
	for _, c := range skipped {
		if len(out) >= m {
			break
		}
		out = append(out, c)
	}
	g.skipped = skipped
	return out
}

// greedy walks layer lc from ep to a local best for q: the paper's
// SEARCH-LAYER with ef = 1, as used above a node's own level.
func (g *graph) greedy(q []float32, ep cand, lc int) cand {
	for changed := true; changed; {
		changed = false
		for _, n := range g.links(ep.id, lc) {
			c := cand{dot(q, g.vec(n)), n}
			if nearer(c, ep) {
				ep = c
				changed = true
			}
		}
	}
	return ep
}

// searchLayer is the paper's SEARCH-LAYER (Algorithm 2): a best-first walk
// of layer lc from eps that keeps the ef nearest nodes seen. With liveOnly,
// dead nodes are still walked through (they keep the graph connected) but
// do not enter the result set, so a query gets ef live nodes even where
// deleted ones crowd the neighbourhood. It returns the result nearest first,
// in g.found.
func (g *graph) searchLayer(q []float32, eps []cand, ef, lc int, liveOnly bool) []cand {
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
		for _, n := range g.links(c.id, lc) {
			if g.visited[n] == stamp {
				continue
			}
			g.visited[n] = stamp
			nc := cand{dot(q, g.vec(n)), n}
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

// search returns up to k live nodes near q (a unit vector), nearest first,
// searching layer 0 with a result set of max(ef, k) (the paper's
// Algorithm 5). The slice is scratch space, valid until the next call.
func (g *graph) search(q []float32, k, ef int) []cand {
	if g.live == 0 {
		return nil
	}
	ep := cand{dot(q, g.vec(g.entry)), g.entry}
	for lc := g.top; lc > 0; lc-- {
		ep = g.greedy(q, ep, lc)
	}
	g.eps = append(g.eps[:0], ep)
	found := g.searchLayer(q, g.eps, max(ef, k), 0, true)
	return found[:min(k, len(found))]
}

// bytes estimates the graph's memory: vectors, links and per-node arrays.
func (g *graph) bytes() int64 {
	b := int64(len(g.chunks)) * chunkNodes * int64(g.dim) * 4
	b += int64(cap(g.links0)) * 4
	for _, u := range g.upper {
		b += int64(cap(u))*4 + 24
	}
	b += int64(cap(g.ent))*8 + int64(cap(g.level)) + int64(cap(g.dead)) + int64(cap(g.visited))*4
	return b
}

func cmpNearer(a, b cand) int {
	if nearer(a, b) {
		return -1
	}
	if nearer(b, a) {
		return 1
	}
	return 0
}

// splitmix is SplitMix64 (Steele, Lea and Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014): a tiny seeded generator
// owned by the index, since node logic may not use math/rand.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit is uniform in (0, 1]: 53 random bits, shifted off zero so that its
// logarithm is finite.
func (r *splitmix) unit() float64 {
	return float64(r.next()>>11+1) / (1 << 53)
}

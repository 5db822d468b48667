package vecidx

// A segment is a share of the index's vectors with an HNSW graph of its
// own (hnsw.go). New vectors go to the newest segment, the growing one,
// until it holds SegmentVectors nodes; then it is sealed and a new one
// grows. The idea is Lucene's (one graph per segment, searched one after
// another, the results merged): a graph insert costs a search of the graph
// for the new node's neighbours, and in a graph of a few thousand nodes
// (a few MB) those reads hit the cache, where in one graph of 100k nodes
// (some 60 MB) most of them missed it, which made an insert cost ~120 µs.
//
// A node is added when its vector is put, and linked into the graph later,
// by the Index's Work, in the order nodes were added: nodes not linked yet
// are scanned exactly by every search. A removed or replaced vector's node
// is a tombstone (dead): it still routes searches, is never reported, and
// goes when the segment is compacted (its live vectors moved to the
// growing segment) or merged into another.
type segment struct {
	g *graph
	// sealed: the segment takes no more put vectors (merges may still add
	// to it, see Index.mergeStep).
	sealed bool
	// drained: the newest this many nodes are dead, moved away by a
	// compaction or merge in progress (where the next move looks from).
	drained int
}

// unlinked is how many of the segment's nodes wait to be linked.
func (s *segment) unlinked() int { return s.g.len() - s.g.linked }

// built says every node of the segment is linked.
func (s *segment) built() bool { return s.g.linked == s.g.len() }

// deadShare is the share of the segment's nodes that are tombstones.
func (s *segment) deadShare() float64 {
	if s.g.len() == 0 {
		return 0
	}
	return float64(s.g.deadN) / float64(s.g.len())
}

package mesh

// Two stamps decide when a tombstone may go, and when a write is too old to
// take.
//
// A pass with a peer that completes (antientropy.go) proves that every item
// the node held when the pass began was then durable on the peer, or
// superseded there. Peers tell each node the start of their last complete
// pass with it, in its current incarnation (a wiped and recreated directory
// is a new incarnation, which no earlier pass covers). The lowest of those
// is the node's refusal point: it holds every write at or below it, or a
// newer one of its key. The proof: a write is durable on the node that
// stamped it before it goes anywhere (Node.write), that node's clock was at
// the write's stamp when it took it, and its pass start, at or above the
// refusal point, is a later reading of the same clock; so the pass carried
// the write, or a newer one of its key, here. Hence a write at or below the
// refusal point for a key the node lacks is one whose newer item, a
// tombstone, the node collected: it is refused (Node.applyRemote), and the
// key does not come back.
//
// A node's stability point is the start of the oldest of its last complete
// passes, one per peer: every peer held, by then, everything it held. Nodes
// tell each other theirs; the lowest a node knows (never above the truth,
// since each only rises) is the collection horizon. A tombstone at or below
// it was on every node, or beaten by a newer write everywhere, when the
// horizon formed, so it may be collected: no node holds an older item of its
// key that could come back. (A node wiped since holds nothing of the key,
// and refuses nothing until peers have passed its new incarnation.) Any
// node's horizon is valid for all, so nodes adopt the highest they hear of.
//
// A node removed from the mesh for good (removed.go) is no peer here: it
// holds up neither point once every remaining node has removed it.
//
// Both are saved before anything relies on them. Neither counts a node's
// passes before it has completed one with every peer since it started
// (passCounts): those carry only what it held, and a node whose directory
// was lost no longer holds its own writes.

// updateStable recomputes this node's stability point after a pass.
func (n *Node) updateStable() {
	var s Stamp
	for i, p := range n.peers {
		if i == 0 || p.passDone.Less(s) {
			s = p.passDone
		}
	}
	if n.cfg.Mutation == MutCollectEarly {
		// Planted bug: one peer's pass is taken for all.
		for _, p := range n.peers {
			if s.Less(p.passDone) {
				s = p.passDone
			}
		}
	}
	if n.stable.Less(s) {
		n.stable = s
	}
	n.updateHorizon()
}

// updateHorizon raises the horizon to the lowest stability point known, and
// the refusal point to the lowest pass start the peers told this node.
func (n *Node) updateHorizon() {
	h, refuse := n.stable, Stamp{}
	for i, p := range n.peers {
		if p.stable.Less(h) {
			h = p.stable
		}
		passed := p.passedMe
		if !n.removedAt.Less(passed) {
			passed = Stamp{} // began before this node removed a node (removed.go)
		}
		if i == 0 || passed.Less(refuse) {
			refuse = passed
		}
	}
	if n.cfg.Mutation == MutCollectEarly {
		h = n.stable
	}
	n.adoptHorizon(h, refuse)
}

// adoptHorizon saves h as the horizon, and refuse as the refusal point,
// where they are higher. Saving comes before any collection or refusal that
// relies on them.
func (n *Node) adoptHorizon(h, refuse Stamp) {
	next := n.saved
	if next.Horizon.Less(h) && !n.tooFarAhead(h) {
		next.Horizon = h
	}
	if next.Refuse.Less(refuse) && !n.tooFarAhead(refuse) {
		next.Refuse = refuse
	}
	if next == n.saved {
		return
	}
	if err := n.state.Save(next.encode()); err != nil {
		n.stateFailing("the collection horizon (tombstones wait until it is)", err)
		return
	}
	n.stateSaved()
	// Either rising may move the collection point (collectPoint).
	n.collectDue = n.collectDue || n.collectPoint() != collectPointOf(next, n.cfg.Mutation)
	if n.cfg.Mutation != MutWallClockLWW {
		// The clock stays above both: a node's refusal point is never above
		// its clock, which a wiped peer that hears from it relies on
		// (Node.join).
		n.hlc.Observe(maxStamp(next.Horizon, next.Refuse))
	}
	n.saved = next
}

// collectPoint is the stamp at or below which this node may collect a
// tombstone: the horizon, but never above the refusal point. The horizon
// says no node holds an older item of the key; but a copy of one may still
// be on its way (a duplicated or delayed replicate, a push), and only what
// is at or below the refusal point is refused (Node.applyRemote). A
// tombstone collected above it would let such a copy back in, and the node
// would serve the deleted key for good while its peers refused it back
// (found by review: a node adopted a horizon from a third node above its
// own refusal point).
func (n *Node) collectPoint() Stamp { return collectPointOf(n.saved, n.cfg.Mutation) }

func collectPointOf(s durableState, mut Mutation) Stamp {
	// The planted bug of MutCollectEarly is in the horizon; it collects at
	// the horizon alone, so that the refusal point does not hide it.
	if mut == MutCollectEarly || s.Horizon.Less(s.Refuse) {
		return s.Horizon
	}
	return s.Refuse
}

// collect drops tombstones at or below the collection point, a bounded
// number per turn. It runs only while the open batch holds no write
// (Flush), so no undo of a failed batch can bring back a key whose
// tombstone it dropped: later writes' undos restore what they found, and a
// batch already syncing is never undone (a failed fsync stops the node).
func (n *Node) collect() {
	dropped := n.rep.collect(n.collectPoint(), n.cfg.CollectPerTurnMax)
	n.collected += dropped
	n.collectDue = dropped == n.cfg.CollectPerTurnMax
}

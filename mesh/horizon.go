package mesh

// The collection horizon decides when a tombstone may go.
//
// A node's stability point is the start of the oldest of its last complete
// anti-entropy passes, one per peer (antientropy.go): every item it held
// then was, by the pass's end, durable on every peer, or superseded there.
// Nodes tell each other their stability points in every message. The
// horizon is the lowest stability point of all the nodes, as this node
// knows them (what it knows is never above the truth, since each only
// rises).
//
// Every write with a stamp at or below the horizon is durable on every node,
// or superseded there. The proof: a write is durable on the node that
// stamped it before it goes anywhere (Node.write), that node's clock was at
// the write's stamp when it took it, and its stability point, at or above
// the horizon, is a later reading of the same clock; so the pass that made
// that point started after the write and carried it to every peer.
//
// Hence a tombstone at or below the horizon is on every node, or beaten by
// a newer write everywhere, and may be collected; and a write at or below
// the horizon for a key a node lacks is one whose tombstone was collected:
// it is refused, not applied (Node.applyRemote), so the key does not come
// back. Any node's horizon is valid for all, so nodes adopt the highest they
// hear of, and save it before collecting below it.

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

// updateHorizon raises the horizon to the lowest stability point known.
func (n *Node) updateHorizon() {
	h := n.stable
	for _, p := range n.peers {
		if p.stable.Less(h) {
			h = p.stable
		}
	}
	if n.cfg.Mutation == MutCollectEarly {
		h = n.stable
	}
	n.adoptHorizon(h)
}

// adoptHorizon saves h as the horizon if it is higher. Saving comes before
// any collection below it, and before any refusal that relies on it.
func (n *Node) adoptHorizon(h Stamp) {
	if !n.saved.Horizon.Less(h) || n.tooFarAhead(h) {
		return
	}
	next := n.saved
	next.Horizon = h
	if err := n.state.Save(next.encode()); err != nil {
		n.logf("cannot save the collection horizon (tombstones wait): %v", err)
		return
	}
	n.saved = next
	if n.cfg.Mutation != MutWallClockLWW {
		n.hlc.Observe(h)
	}
	n.collectDue = true
}

// collect drops tombstones at or below the horizon, a bounded number per
// turn. It runs only while the open batch holds no write (Flush), so no
// undo of a failed batch can bring back a key whose tombstone it dropped:
// later writes' undos restore what they found, and a batch already syncing
// is never undone (a failed fsync stops the node).
func (n *Node) collect() {
	dropped := n.rep.collect(n.saved.Horizon, n.cfg.CollectPerTurnMax)
	n.collected += dropped
	n.collectDue = dropped == n.cfg.CollectPerTurnMax
}

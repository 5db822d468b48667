package mesh

import (
	"errors"
	"fmt"
	"slices"

	"dkv/core"
)

// Removing a node for good (Config.Removed) lets the rest of the mesh
// collect tombstones without it, and keeps its data directory out forever.
//
// A removed node is no peer: nothing is sent to it, and it counts toward
// no pass, stability point, refusal point, join or quorum. So the horizon
// (horizon.go) rises again once every remaining node has passed every
// other, and a node's transport keeps no queue for the dead one.
//
// Its data directory must then never come back. The remaining nodes
// collect tombstones it may lack, and it may hold older items of their
// keys: served by it, those deletes are undone for its clients, and if its
// node were ever listed again they would live on it for good while every
// other node refused them (at or below their refusal points). So each
// remaining node saves, before it takes any message, the highest
// incarnation of the removed node it refuses: its clock then, plus the
// max offset. The removed directory's incarnation is below it: it is the
// calendar time the directory was made at (or a peer's number, raised by
// one: Node.outgrow), before the node died, and the remaining node's clock
// has since observed every stamp of the dead node it took. A message from
// a removed node, or from an incarnation at or below the saved bar, is
// answered msgRemoved and dropped; the node it names saves that it was
// evicted and stops, and refuses to start on that directory again. A new,
// empty directory is a new incarnation, above the bar: once the remaining
// nodes list the node again (without it in Config.Removed), it joins as a
// wiped node does (join.go).
//
// The refusal point (horizon.go) says the node holds every write at or
// below it that any node holds. The dead node's own passes carried its
// writes; without them, a peer's pass carries those the peer held when
// it began. But a peer that still counts the dead node may have taken
// one of its last writes after its pass began, at a stamp below the
// start, and that pass then counted without carrying it: the write was
// refused here for good when a later pass brought it, while the peer
// held it (found by review). So after a removal, a node's refusal point
// counts only passes that began after its own start with the removal: a
// pass start above its clock then plus the max offset is a peer's reading
// taken once the peer's calendar had passed this node's start, when
// the dead node was dead (the operator's first step), every write it
// sent had arrived, and the pass carried them.
//
// A remaining node not yet restarted with the removal still counts the
// dead node: its stability point stays below its last pass with it, and
// every horizon formed anywhere is at or below that (it is the lowest
// stability point some node knows), so it collects nothing the dead node
// may lack, and its refusal point stays at its last pass from the dead
// node.

// nodesMax bounds a mesh's nodes, and its node ids (durableState.Removed).
const nodesMax = 64

// errEvicted is the error of a node whose data directory was removed from
// its mesh.
var errEvicted = errors.New("this data directory's node was removed from its mesh for good")

// evictedHint is what to do about it.
const evictedHint = "its data may hold keys deleted since, which the other nodes collected, and would bring them back: " +
	"empty the data directory and start the node again to join as a new node (once its peers no longer list it in --removed-nodes), or retire it"

// recordRemovals saves, for each removed node, the highest incarnation of
// it this node refuses (see above); a bar saved earlier only rises. It
// runs at start, before any message is taken.
func (n *Node) recordRemovals() error {
	if len(n.cfg.Removed) == 0 {
		return nil
	}
	bar := uint64(max(n.hlc.Last().Wall, n.wall()) + int64(n.cfg.MaxOffset))
	n.removedAt = Stamp{Wall: int64(bar)}
	next := n.saved
	for _, id := range n.cfg.Removed {
		next.Removed[id] = max(next.Removed[id], bar)
	}
	if next == n.saved {
		return nil
	}
	if err := n.state.Save(next.encode()); err != nil {
		return fmt.Errorf("saving that nodes %v were removed: %w", n.cfg.Removed, err)
	}
	n.saved = next
	n.logf("nodes %v are removed from the mesh for good: they are no peers, and their data directories up to incarnation %d are refused", n.cfg.Removed, bar)
	return nil
}

// removedSender reports whether a message from node from, of incarnation
// inc, is a removed node's: from is in Config.Removed, or inc is at or
// below the incarnation this node saved as refused for it.
func (n *Node) removedSender(from core.NodeID, inc uint64) bool {
	if slices.Contains(n.cfg.Removed, from) {
		return true
	}
	return int(from) < nodesMax && int(from) >= 0 && inc <= n.saved.Removed[from]
}

// refuseRemoved answers a removed node's message: msgRemoved names the
// incarnation it came from, so that its node stops (evicted).
func (n *Node) refuseRemoved(from core.NodeID, inc uint64) {
	n.drop("a message from node %d (incarnation %d), which was removed from the mesh for good; told it so", from, inc)
	n.env.Network.Send(from, n.encode(nil, &message{header: header{kind: msgRemoved, yourInc: inc}}))
}

// evicted takes msgRemoved from p: if it names this incarnation, this
// node was removed from its mesh, and stops for good.
func (n *Node) evicted(p *peer, m *message) {
	if m.yourInc != n.saved.Incarnation || n.stopped != nil {
		return // about an earlier directory's, or told already
	}
	n.stopped = fmt.Errorf("%w: node %d refuses it as removed; %s", errEvicted, p.id, evictedHint)
	n.logf("%v", n.stopped)
	next := n.saved
	next.Evicted = true
	if err := n.state.Save(next.encode()); err != nil {
		n.logf("cannot save that this node was removed from its mesh (it stops anyway; restarted on this directory, it is refused again by its peers): %v", err)
		return
	}
	n.saved = next
}

// validateRemoved checks Config.Removed.
func (c *Config) validateRemoved() error {
	for i, id := range c.Removed {
		switch {
		case id == c.ID:
			return fmt.Errorf("mesh: node %d is among the removed nodes %v: a node does not remove itself", id, c.Removed)
		case !slices.Contains(c.Nodes, id):
			return fmt.Errorf("mesh: removed node %d is not among the nodes %v", id, c.Nodes)
		case int(id) < 0 || int(id) >= nodesMax:
			return fmt.Errorf("mesh: removed node id %d; ids of removed nodes are 0..%d", id, nodesMax-1)
		case slices.Contains(c.Removed[:i], id):
			return fmt.Errorf("mesh: removed node ids repeat in %v", c.Removed)
		}
	}
	if len(c.Removed) > 0 && c.members() < 2 {
		return fmt.Errorf("mesh: removing nodes %v leaves %d node of %d; a mesh keeps two at least", c.Removed, c.members(), len(c.Nodes))
	}
	return nil
}

// members is how many nodes remain in the mesh: Nodes less Removed.
func (c *Config) members() int { return len(c.Nodes) - len(c.Removed) }

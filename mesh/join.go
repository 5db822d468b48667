package mesh

import (
	"fmt"
	"slices"
	"time"

	"dkv/core"
)

// A node whose data directory is new takes no write until it has joined
// its mesh: heard, since it started, from every peer a message naming its
// new incarnation.
//
// Why: a peer refuses a write at or below its refusal point for a key it
// lacks (horizon.go), and its refusal point was built from the passes of
// this node's predecessor (the directory before a wipe), readings of a
// clock that is lost with the directory and may be ahead of this node's
// calendar time. A write stamped below it would be refused by every peer
// for good while this node served it and anti-entropy pushed it in vain:
// an acknowledged write that never replicates, lost with this node's disk
// (found by review). A peer's clock is never below its refusal point (the
// refusal point rises only from stamps its clock observed, and a restarted
// node's clock starts above it), so a message from every peer lifts this
// node's clock above all of them. The message must name this incarnation:
// a peer that knows it drops its predecessor's delayed messages, and the
// predecessor's old passes no longer raise its refusal point; from then on
// the refusal point rises only with passes of this incarnation, which
// carry every write this node stamped before they began.
//
// The rule holds writes rather than refusing them: a new node sends its
// first digest to every peer at start, and the answers come one round trip
// later, so a whole mesh started together takes writes within
// milliseconds, and only a node that cannot reach some peer refuses them,
// after QuorumTimeout (as long as a quorum write waits for its peers).
// Carrying the refusal points in the messages instead would keep such a
// node writable, but a write taken before it heard from a peer would still
// be stamped blind. The joined state is saved, with the clock as the
// high-water mark, before any held write is stamped: a restarted node that
// joined starts its clock above the peers' refusal points as it found
// them, and one that had not joined waits again.

// heldWrite is a write taken before the node joined, not yet stamped.
type heldWrite struct {
	req      *core.Request
	reply    core.ReplyFunc
	items    []Item
	deadline int64 // Clock.Now after which it is refused unavailable
}

// hold keeps a write until the node joins, or refuses it if too many wait.
func (n *Node) hold(req *core.Request, reply core.ReplyFunc, items []Item) {
	if len(n.held) >= n.cfg.QuorumWaitsMax {
		n.queue(pending{reply: reply, resp: core.ErrorResponse(core.CodeUnavailable, "%s; %d writes wait already", n.notJoined(), len(n.held))})
		return
	}
	n.held = append(n.held, heldWrite{req: req, reply: reply, items: items, deadline: n.env.Clock.Now() + int64(n.cfg.QuorumTimeout)})
	n.armJoinTimer()
}

// notJoined says why a write waits, and for whom.
func (n *Node) notJoined() string {
	var silent []core.NodeID
	for _, p := range n.peers {
		if !p.knowsMe {
			silent = append(silent, p.id)
		}
	}
	why := fmt.Sprintf("this node's data directory is new (incarnation %d) and nodes %v have not answered it yet: until every peer has, its clock may be below what they refuse, so it takes no writes (reads are served); retry, or write to another node",
		n.saved.Incarnation, silent)
	if out, ahead, who := n.outOfStep(); out {
		// They cannot answer while one side drops the other's messages as
		// too far ahead: the clocks are what to mend, not the network.
		// Said only "have not answered", the error sent the operator after
		// peers that were up and talking (found by review).
		why += fmt.Sprintf("; they cannot, since %s: check the clocks", n.describeOutOfStep(ahead, who))
	}
	return why
}

// Joined reports whether the node has joined its mesh: every peer named
// its incarnation, so it takes writes (until then it holds them).
func (n *Node) Joined() bool { return n.saved.Joined }

// join saves the joined state once every peer named this incarnation, and
// then takes the held writes in the order they came.
func (n *Node) join() {
	if n.saved.Joined {
		return
	}
	for _, p := range n.peers {
		if !p.knowsMe {
			return
		}
	}
	next := n.saved
	next.Joined = true
	next.HighWater = maxStamp(next.HighWater, n.hlc.Last())
	if err := n.state.Save(next.encode()); err != nil {
		n.logf("cannot save that this node joined its mesh (writes wait): %v", err)
		return
	}
	n.saved = next
	n.logf("joined the mesh: every peer answered incarnation %d; clock %s; taking writes (%d held)", n.saved.Incarnation, n.hlc.Last(), len(n.held))
	held := n.held
	n.held = nil
	if n.joinTimer != nil {
		n.joinTimer.Stop()
		n.joinTimer = nil
	}
	for _, h := range held {
		// A write is checked against the data bound again, now, behind
		// the held writes before it: each fitted alone when it came, and
		// together they could go past it.
		if h.req.Op == core.OpSet || h.req.Op == core.OpBulkSet {
			n.writeGrowing(h.req, h.reply, h.items)
			continue
		}
		n.deleteGrowing(h.req, h.reply, h.items)
	}
}

// armJoinTimer refuses held writes past their deadline; one timer runs
// while writes are held, armed for the oldest.
func (n *Node) armJoinTimer() {
	if n.joinTimer != nil || len(n.held) == 0 {
		return
	}
	d := time.Duration(max(n.held[0].deadline-n.env.Clock.Now(), 0))
	n.joinTimer = n.env.Clock.AfterFunc(d, func() {
		n.joinTimer = nil
		if n.turns.Stopped() != nil || n.saved.Joined {
			return
		}
		now := n.env.Clock.Now()
		i := 0
		for ; i < len(n.held) && n.held[i].deadline <= now; i++ {
			n.queue(pending{reply: n.held[i].reply, resp: core.ErrorResponse(core.CodeUnavailable, "%s (waited %s)", n.notJoined(), n.cfg.QuorumTimeout)})
		}
		n.held = slices.Delete(n.held, 0, i)
		n.armJoinTimer()
	})
}

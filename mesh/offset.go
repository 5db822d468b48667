package mesh

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Clocks out of step. Every node drops a peer message stamped more than
// MaxOffset ahead of its own calendar time (tooFarAhead), so that one bad
// clock cannot drag every stamp after it into the future. But a node whose
// calendar itself runs ahead (a clock stepped forward, a VM resumed with a
// wrong time) stamps its writes ahead of every peer's: each peer drops its
// every message, so its writes live on it alone, and once calendar time
// catches up they win over every write the other nodes took meanwhile.
// And a node whose calendar runs behind drops its peers' every message: it
// never learns their writes, and its own lose to writes made before them.
// Nothing on the node can tell that its own calendar is the wrong one.
//
// Its peers can. A node that drops a message as too far ahead tells its
// sender so (msgClockRefused, at most once per refusalGap per peer, naming
// the stamp it dropped): the sender then knows itself ahead of that peer,
// and the node that dropped it knows itself behind. Each side holds that
// until it sees the peer take, or takes from it, a stamp at least as high
// as the one dropped: the peer answers a round whose digest carried such a
// clock, or acknowledges such a write; or a message of the peer's carries
// such a clock. Each round's digest carries a fresh reading of the clock,
// so that the rounds probe the calendar as it is now: a node that refuses
// writes takes no readings, and its last one falls behind its calendar;
// rounds that carried it were taken once the peers' calendars came within
// the max offset of it, and the node took that for agreement, and took a
// write stamped by its calendar, as far ahead as ever (found by the
// simulator). Refusals come again at every round while the clocks disagree, so a lost
// one costs a round. A node out of step with most of the peers it heard
// from within offsetWindow, in either direction, refuses writes
// (unavailable, naming the clocks) and still serves reads, as CockroachDB's
// nodes stop when their offset from most of their peers passes the bound.
// Most decide which clock is wrong; in a mesh of two, or of three with one
// node silent, neither node can tell, and both refuse writes until the
// clocks agree. The writes a node took between its jump and the first
// refusal (about one round trip after its first message) are the ones
// this cannot stop.

// refusalGap is the least time between two refusals sent to one peer: a
// peer ahead sends a message for every write and round, and one refusal a
// while is enough to keep its evidence fresh (offsetWindow).
func (n *Node) refusalGap() time.Duration { return n.cfg.AntiEntropyInterval / 2 }

// offsetWindow is how long a peer heard from counts among the peers whose
// clocks decide (outOfStep), and how long a sign that the two clocks
// disagree lasts without another: a node out of step sends each peer a
// digest at least every AntiEntropyInterval (a refused round ends at once:
// clockRefused) and hears from it at least every RoundTimeout (the peer's
// own rounds), so ten of the longer of the two outlast many lost messages,
// and a peer down or cut off for that long no longer counts.
func (n *Node) offsetWindow() int64 {
	return 10 * int64(max(n.cfg.AntiEntropyInterval, n.cfg.RoundTimeout))
}

// offsetEvidence is what one peer's messages tell of the two clocks.
type offsetEvidence struct {
	// contact is Clock.Now of the last message from the peer, taken or
	// dropped as too far ahead; -1 none since start.
	contact int64
	// outAt is Clock.Now of the last sign that the clocks are more than
	// the max offset apart, -1 none or none since one that they agree;
	// ahead, which way: this node's is ahead (the peer refused its
	// message) or behind (this node dropped the peer's).
	outAt int64
	ahead bool
	// stamp is the stamp dropped: evidence that the clocks agree again
	// must carry one at least as high (inStep).
	stamp Stamp
	// refusedAt is Clock.Now of the last refusal sent to the peer, -1 none.
	refusedAt int64
}

func newOffsetEvidence() offsetEvidence {
	return offsetEvidence{contact: -1, outAt: -1, refusedAt: -1}
}

// droppedAsAhead notes that p sent a message stamped beyond the max offset
// (refused: the stamp) and tells p so, at most once per refusalGap.
func (n *Node) droppedAsAhead(p *peer, refused Stamp) {
	now := n.env.Clock.Now()
	p.offset.contact, p.offset.outAt, p.offset.ahead, p.offset.stamp = now, now, false, refused
	if p.offset.refusedAt >= 0 && now-p.offset.refusedAt < int64(n.refusalGap()) {
		return
	}
	p.offset.refusedAt = now
	n.send(p, &message{header: header{kind: msgClockRefused}, refused: refused})
}

// clockRefused takes p's word that it dropped a message of this node's
// stamped beyond the max offset of its calendar time. The round in flight
// with p, if any, is over: p dropped its digest or will drop its push, and
// waiting for its timeout would read p's silence as a slow link
// (roundGivenUp) and space the rounds, and so the evidence, further apart.
func (n *Node) clockRefused(p *peer, m *message) {
	if n.hlc.Last().Less(m.refused) {
		// Never sent: a stamp above this node's clock. A damaged or
		// confused peer's; not evidence.
		n.drop("a clock refusal from node %d of stamp %s, above this node's clock %s", p.id, m.refused, n.hlc.Last())
		return
	}
	now := n.env.Clock.Now()
	p.offset.outAt, p.offset.ahead, p.offset.stamp = now, true, m.refused
	if p.round != 0 {
		p.round = 0
		p.slow = 0
		n.scheduleRound(p, n.cfg.AntiEntropyInterval)
	}
}

// inStep notes that a stamp s crossed between p and this node: p took one
// of this node's (ahead: p answered a round whose digest carried s, or
// acknowledged a write stamped s), or this node took one of p's (behind).
// If s is at least the stamp dropped when they last disagreed that way,
// they agree again.
func (n *Node) inStep(p *peer, ahead bool, s Stamp) {
	if p.offset.outAt >= 0 && p.offset.ahead == ahead && !s.Less(p.offset.stamp) {
		p.offset.outAt = -1
	}
}

// outOfStep reports whether this node's clock is out of step with most of
// the peers heard from within offsetWindow, and which way most of those
// disagree: ahead of them (they refused its messages) or behind. It logs
// when that starts and when it ends.
func (n *Node) outOfStep() (out bool, ahead bool, who []int) {
	now := n.env.Clock.Now()
	since := now - n.offsetWindow()
	heard, aheadOf, behind := 0, 0, 0
	for _, p := range n.peers {
		last := max(p.heard, p.offset.contact)
		if last < 0 || last < since {
			continue
		}
		heard++
		if p.offset.outAt >= 0 && p.offset.outAt >= since {
			who = append(who, int(p.id))
			if p.offset.ahead {
				aheadOf++
			} else {
				behind++
			}
		}
	}
	out = heard > 0 && 2*len(who) > heard
	ahead = aheadOf >= behind
	if out != n.outOfStepLogged {
		if out {
			n.logf("%s: refusing writes until the clocks agree (reads are served); check the clocks", n.describeOutOfStep(ahead, who))
		} else {
			n.logf("this node's clock is in step with its peers' again: taking writes")
		}
		n.outOfStepLogged = out
	}
	return out, ahead, who
}

// describeOutOfStep says which clocks disagree, and which way.
func (n *Node) describeOutOfStep(ahead bool, who []int) string {
	names := make([]string, len(who))
	for i, id := range slices.Sorted(slices.Values(who)) {
		names[i] = fmt.Sprint(id)
	}
	nodes := "node " + names[0]
	if len(names) > 1 {
		nodes = "nodes " + strings.Join(names, ", ")
	}
	if ahead {
		return fmt.Sprintf("this node's clock is more than the max offset (%s) ahead of the clocks of %s, which refuse its messages", n.cfg.MaxOffset, nodes)
	}
	return fmt.Sprintf("this node's clock is more than the max offset (%s) behind the clocks of %s, whose messages it refuses", n.cfg.MaxOffset, nodes)
}

// peerClock is how p's clock stands to this node's, for status: "ahead"
// (this node's is ahead of p's), "behind", or "" (in step, or unknown).
func (n *Node) peerClock(p *peer, now int64) string {
	switch {
	case p.offset.outAt < 0 || p.offset.outAt < now-n.offsetWindow():
		return ""
	case p.offset.ahead:
		return "ahead"
	}
	return "behind"
}

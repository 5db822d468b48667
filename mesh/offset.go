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
// Its peers can, by their calendars: each round begins with a calendar
// message (msgCalendar), the sender's calendar time as it sends. Not by
// the stamps: every node's hybrid clock takes up the fastest calendar's
// time and passes it on in its own messages, and a node in step with most
// of its peers, which dropped a second node's messages for the time they
// relayed from a third, took itself for the one behind, and the second
// node took itself for one ahead (found by review). A node that finds a
// peer's reading more than MaxOffset ahead of its calendar knows itself
// behind that peer, and tells it so (a calendar message naming the
// reading, at most once per refusalGap per peer): the peer knows itself
// ahead. Each side holds that until it sees the other take a reading at
// least as high as the one refused as in step: a reading of the peer's
// this node takes (behind), or the peer's word, in its own calendar
// messages, of the latest reading of this node's it took (ahead). The
// messages travel late, so a reading is only evidence of a peer's calendar
// ahead, never behind: the receiver judges, and tells the sender.
// Refusals come again at every round while the calendars disagree, so a
// lost one costs a round. A node out of step with most of the peers it
// heard from within offsetWindow, in either direction, refuses writes
// (unavailable, naming the clocks) and still serves reads, as CockroachDB's
// nodes stop when their offset from most of their peers passes the bound.
// Most decide which clock is wrong; in a mesh of two, or of three with one
// node silent, neither node can tell, and both refuse writes until the
// clocks agree. The writes a node took between its jump and the first
// refusal (about one round trip after its next round begins) are the ones
// this cannot stop. A peer of a build before calendar messages sends none:
// no offset is judged from it.
//
// A message dropped as stamped too far ahead is still answered with a
// refusal of its stamp (msgClockRefused), at most once per refusalGap:
// not evidence of the calendars, but the end of the sender's round in
// flight, which would otherwise wait out its timeout.

// refusalGap is the least time between two refusals sent to one peer: a
// peer ahead sends a message for every write and round, and one refusal a
// while is enough to keep its evidence fresh (offsetWindow).
func (n *Node) refusalGap() time.Duration { return n.cfg.AntiEntropyInterval / 2 }

// offsetWindow is how long a peer heard from counts among the peers whose
// clocks decide (outOfStep), and how long a sign that the two clocks
// disagree lasts without another: a node out of step sends each peer a
// calendar reading at least every AntiEntropyInterval (a refused round ends
// at once: clockRefused) and has one from it at least every RoundTimeout
// (the peer's own rounds), so ten of the longer of the two outlast many
// lost messages, and a peer down or cut off for that long no longer counts.
func (n *Node) offsetWindow() int64 {
	return 10 * int64(max(n.cfg.AntiEntropyInterval, n.cfg.RoundTimeout))
}

// offsetEvidence is what one peer's messages tell of the two calendars.
type offsetEvidence struct {
	// contact is Clock.Now of the last message from the peer, taken,
	// dropped as too far ahead, or a calendar reading; -1 none since start.
	contact int64
	// outAt is Clock.Now of the last sign that the calendars are more
	// than the max offset apart, -1 none or none since one that they
	// agree; ahead, which way: this node's is ahead (the peer refused its
	// reading) or behind (this node refused the peer's).
	ahead bool
	outAt int64
	// cal is the calendar reading refused: evidence that the calendars
	// agree again must take one at least as high (inStep).
	cal int64
	// seen is the peer's latest calendar reading this node took as in
	// step, calNone none: the peer learns it from this node's calendar
	// messages.
	seen int64
	// refusedAt is Clock.Now of the last refusal sent to the peer (of a
	// stamp or a calendar reading), -1 none.
	refusedAt, calRefusedAt int64
}

func newOffsetEvidence() offsetEvidence {
	return offsetEvidence{contact: -1, outAt: -1, seen: calNone, refusedAt: -1, calRefusedAt: -1}
}

// refuseNow reports whether a refusal to a peer, the last sent at *at,
// may go now, and if so notes it sent.
func (n *Node) refuseNow(at *int64) bool {
	now := n.env.Clock.Now()
	if *at >= 0 && now-*at < int64(n.refusalGap()) {
		return false
	}
	*at = now
	return true
}

// droppedAsAhead notes that p sent a message stamped beyond the max offset
// (refused: the stamp) and tells p so, at most once per refusalGap, to end
// its round (clockRefused).
func (n *Node) droppedAsAhead(p *peer, refused Stamp) {
	p.offset.contact = n.env.Clock.Now()
	if n.refuseNow(&p.offset.refusedAt) {
		n.send(p, &message{header: header{kind: msgClockRefused}, refused: refused})
	}
}

// clockRefused takes p's word that it dropped a message of this node's
// stamped beyond the max offset of its calendar time. The round in flight
// with p, if any, is over: p dropped its digest or will drop its push, and
// waiting for its timeout would read p's silence as a slow link
// (roundGivenUp) and space the rounds, and so the calendar readings,
// further apart. It is no evidence of this node's calendar: the stamp may
// carry a third node's time (calendar messages are).
func (n *Node) clockRefused(p *peer, m *message) {
	if n.hlc.Last().Less(m.refused) {
		// Never sent: a stamp above this node's clock. A damaged or
		// confused peer's.
		n.drop("a clock refusal from node %d of stamp %s, above this node's clock %s", p.id, m.refused, n.hlc.Last())
		return
	}
	if p.round != 0 {
		p.round = 0
		p.slow = 0
		n.scheduleRound(p, n.cfg.AntiEntropyInterval)
	}
}

// sendCalendar sends p this node's calendar time, the latest reading of
// p's it took as in step, and tooAhead (calNone, or a reading of p's it
// refuses).
func (n *Node) sendCalendar(p *peer, tooAhead int64) {
	n.send(p, &message{header: header{kind: msgCalendar}, sent: n.wall(), seen: p.offset.seen, tooAhead: tooAhead})
}

// calendarFrom judges p's calendar reading, and takes p's word on this
// node's. It runs before a message is checked for stamps too far ahead:
// a peer whose stamps relay a third node's time may be in step.
func (n *Node) calendarFrom(p *peer, m *message) {
	now, wall := n.env.Clock.Now(), n.wall()
	p.offset.contact = now
	if m.sent > wall+int64(n.cfg.MaxOffset) {
		p.offset.outAt, p.offset.ahead, p.offset.cal = now, false, m.sent
		if n.refuseNow(&p.offset.calRefusedAt) {
			n.sendCalendar(p, m.sent)
		}
	} else {
		p.offset.seen = max(p.offset.seen, m.sent)
		n.inStep(p, false, m.sent)
	}
	if m.tooAhead != calNone {
		if m.tooAhead > wall {
			// Never read: a reading beyond this node's calendar (or
			// one from before the calendar was set back). Not evidence.
			n.drop("a calendar refusal from node %d of reading %d, beyond this node's calendar %d", p.id, m.tooAhead, wall)
		} else if m.seen == calNone || m.seen < m.tooAhead {
			p.offset.outAt, p.offset.ahead, p.offset.cal = now, true, m.tooAhead
		}
	}
	if m.seen != calNone {
		n.inStep(p, true, m.seen)
	}
}

// inStep notes that a calendar reading c was taken as in step: one of this
// node's by p (ahead), or one of p's by this node (behind). If c is at
// least the reading refused when they last disagreed that way, they agree
// again.
func (n *Node) inStep(p *peer, ahead bool, c int64) {
	if p.offset.outAt >= 0 && p.offset.ahead == ahead && c >= p.offset.cal {
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
		return fmt.Sprintf("this node's clock is more than the max offset (%s) ahead of the clocks of %s (their calendar time as they sent it), which refuse its readings", n.cfg.MaxOffset, nodes)
	}
	return fmt.Sprintf("this node's clock is more than the max offset (%s) behind the clocks of %s (their calendar time as they sent it), whose readings it refuses", n.cfg.MaxOffset, nodes)
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

package mesh

import (
	"time"

	"dkv/core"
)

// Anti-entropy repairs what replication missed. Each node runs passes with
// each peer, independently: a pass walks the buckets from the first to the
// last in rounds, and a round is
//
//	A → P  digest:   A's digest of every bucket, and where the pass is
//	P → A  summary:  from there on, the keys and stamps P holds in the
//	                 buckets whose digests differ, up to SummaryItemsMax,
//	                 and how far that got (sent once P's state is durable)
//	A → P  push:     the items P lacks or holds older, and the keys A
//	                 lacks or holds older, to pull (up to PushBytesMax)
//	P → A  push-ack: the pulled items (sent once the pushed ones are
//	                 durable on P)
//
// A round that finds nothing to exchange ends at the summary. The pass
// moves on past what a round covered only when the round exchanged all of
// it; otherwise the same range comes again, now with less to send, so a
// round's work is bounded and progress is certain. A pass's rounds follow
// each other at once, and so do rounds that repaired much (a node catching
// up); after a pass that repaired little the peer waits an interval. Under
// load nearly every round finds a few writes still on their way by
// replication; going on at once after those would make anti-entropy a
// second replication, at a cost per round far above a write's.
//
// A pass that completes proves something: every item A held when it began
// was then durable on P, or P held a newer one. The start of the last
// complete pass with every peer is A's stability point, which the
// collection horizon is made of (horizon.go).

// peer is what a node keeps about one other node.
type peer struct {
	id  core.NodeID
	bit uint64 // in quorum acknowledgement sets

	heard  int64 // Clock.Now of its last message, -1 none since start
	stable Stamp // the highest stability point it has told
	// inc is its incarnation (0: not heard from since start); passedMe
	// the start of its last complete pass with this node's incarnation.
	inc      uint64
	passedMe Stamp
	// knowsMe: it named this node's incarnation in a message since this
	// node started (join.go).
	knowsMe bool

	// The current pass: when it began, where it is, the round in flight.
	passStart   Stamp
	cursor      cursor
	round       uint64 // 0: none in flight
	roundFrom   cursor
	roundTo     cursor // the summary's end, once it came
	pushPartial bool   // the round's push left items out
	exchanged   int    // items the round pushed and pulled
	timer       core.Timer
	// roundAt is Clock.Now when the round began; slow, how many times
	// the round timeout is doubled for this peer (roundTimeout).
	roundAt int64
	slow    int

	passDone Stamp // the start of the last complete pass
	passes   int
	// passAt is Clock.Now when the last complete pass began, -1 none;
	// passBegan, when the current one did. Status reports the time since
	// passAt as the anti-entropy lag: what this node held before then,
	// the peer holds. A pass proves that of what the node held at its
	// start, not at its end: timed from its end, as it was, a pass that
	// took minutes (a peer catching up) showed no lag at all while the
	// writes of those minutes that replication lost were still missing
	// (found by review).
	passAt      int64
	passBegan   int64
	unreachable bool

	itemsSent, itemsFetched, replicated int64

	// offset: what its messages tell of the two clocks (offset.go).
	offset offsetEvidence
}

// saveHighWater makes sure a restarted node's clock starts above s, a
// pass start about to become part of its stability point. A failed save
// leaves the pass uncounted; the next one tries again.
func (n *Node) saveHighWater(s Stamp) bool {
	if n.cfg.Mutation == MutHLCNotPersisted || !n.saved.HighWater.Less(s) {
		return true
	}
	next := n.saved
	next.HighWater = s
	if err := n.state.Save(next.encode()); err != nil {
		n.stateFailing("the clock's high-water mark (passes with peers are not counted until it is)", err)
		return false
	}
	n.stateSaved()
	n.saved = next
	return true
}

// stateFailing logs a failed save of the node's state once until a save
// works again (stateSaved): on a full disk every pass ends in one, and a
// line for each filled the log at 3,800 lines a second (found by review).
func (n *Node) stateFailing(what string, err error) {
	if !n.stateFailed {
		n.logf("cannot save %s; retrying each anti-entropy interval, logged once until it works: %v", what, err)
	}
	n.stateFailed = true
}

// stateSaved notes that the node's state saves again.
func (n *Node) stateSaved() {
	if n.stateFailed {
		n.logf("the node's state saves again")
	}
	n.stateFailed = false
}

// reborn restarts everything this node knew of p's state: its data
// directory is a new one (first heard of since this node started, or wiped
// and created again), and a pass that began before holds for the old one.
func (n *Node) reborn(p *peer, inc uint64) {
	if p.inc == 0 {
		p.inc = inc // first heard of since this node started: nothing to undo
		return
	}
	n.logf("node %d has a new data directory (incarnation %d, was %d): anti-entropy with it starts over", p.id, inc, p.inc)
	p.inc = inc
	p.passedMe = Stamp{}
	p.passDone = Stamp{}
	p.round = 0
	n.startPass(p)
	n.scheduleRound(p, 0)
}

// startPass begins a pass over every bucket with p.
func (n *Node) startPass(p *peer) {
	p.passStart = n.hlc.Now(n.wall())
	p.passBegan = n.env.Clock.Now()
	p.cursor = cursor{}
	if p.passes == 0 {
		p.passAt = -1
	}
}

// scheduleRound arms p's next round after d.
func (n *Node) scheduleRound(p *peer, d time.Duration) {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timer = n.env.Clock.AfterFunc(d, func() {
		p.timer = nil
		if n.turns.Stopped() != nil {
			return
		}
		if p.round != 0 {
			// The round in flight went unanswered: the peer is down, cut
			// off, or lost a message, or the link is too slow for the
			// round. Start it again.
			p.unreachable = true
			n.roundGivenUp(p)
		}
		n.startRound(p)
	})
}

// startRound sends p a digest of every bucket, from the pass's cursor on.
func (n *Node) startRound(p *peer) {
	n.nextRound++
	p.round = n.nextRound
	p.roundFrom = p.cursor
	p.pushPartial, p.exchanged = false, 0
	p.roundAt = n.env.Clock.Now()
	// A calendar reading, which the peer judges against its own
	// (offset.go). And a fresh clock reading for the digest to carry, as
	// before calendar messages: a node that has stamped nothing since its
	// calendar jumped ahead still holds a last reading from before, and
	// with the fresh one its digest meets the peer's max offset check
	// (the peer drops it and ends the round: clockRefused) as its writes
	// would.
	n.sendCalendar(p, calNone)
	if n.cfg.Mutation != MutWallClockLWW {
		n.hlc.Now(n.wall())
	}
	digests := make([]uint64, bucketsN)
	copy(digests, n.rep.digests[:])
	n.send(p, &message{header: header{kind: msgDigest}, round: p.round, from: p.cursor, digests: digests})
	n.scheduleRound(p, n.roundTimeout(p))
}

// roundSlowMax bounds the doublings of RoundTimeout for a slow peer: 2 s
// becomes at most 64 s, enough for 4 MiB answers over about 1 Mbit/s.
const roundSlowMax = 5

// roundTimeout is how long a round with p may take: RoundTimeout, doubled
// for each round given up while p was heard from (roundGivenUp).
func (n *Node) roundTimeout(p *peer) time.Duration { return n.cfg.RoundTimeout << p.slow }

// roundGivenUp adjusts p's round timeout after a round went unanswered.
// A peer heard from since the round began is up, and its link too slow
// for the round: a summary or a pull's answer of 4 MiB takes longer than
// 2 s below about 16 Mbit/s. Each round was given up before its summary
// came, the summary then dropped as the answer to a round given up, and
// nothing was ever exchanged for as long as the link stayed that slow
// (found by review); so the next round waits twice as long. A silent peer
// is down or cut off: it is tried again every RoundTimeout, so that a
// mesh resumes anti-entropy as soon as a partition heals.
func (n *Node) roundGivenUp(p *peer) {
	if p.heard >= p.roundAt && p.heard >= 0 {
		p.slow = min(p.slow+1, roundSlowMax)
	} else {
		p.slow = 0
	}
}

// answerDigest is P's side of a round's first step: list the keys and
// stamps of the buckets whose digests differ from the asker's, from its
// cursor on, up to the summary's bound.
func (n *Node) answerDigest(from *peer, m *message) {
	out := &message{header: header{kind: msgSummary}, round: m.round, from: m.from, to: cursor{bucket: bucketsN}}
	full := false
	bytes := 0
	for b := m.from.bucket; b < bucketsN && !full; b++ {
		if m.digests[b] == n.rep.digests[b] {
			continue
		}
		out.diff = append(out.diff, b)
		start := ""
		if b == m.from.bucket {
			start = m.from.key
		}
		n.rep.bucketItems(b, start, func(it *Item, _ string) bool {
			if len(out.metas) >= n.cfg.SummaryItemsMax || bytes >= n.cfg.PushBytesMax {
				out.to = cursor{bucket: b, key: it.Key}
				full = true
				return false
			}
			out.metas = append(out.metas, meta{key: it.Key, stamp: it.Stamp, tomb: it.Tomb})
			bytes += len(it.Key) + stampBytes + 2
			return true
		})
	}
	if n.cfg.Mutation == MutSkipLastRange && !full && len(out.diff) > 0 {
		// Planted bug: the last range that differs is left out, yet the
		// summary claims to cover every bucket.
		last := out.diff[len(out.diff)-1]
		out.diff = out.diff[:len(out.diff)-1]
		for len(out.metas) > 0 && bucketOf(out.metas[len(out.metas)-1].key) == last {
			out.metas = out.metas[:len(out.metas)-1]
		}
	}
	// The summary says what this node holds: it leaves once that is durable.
	n.sendDurable(from, out)
}

// handleSummary is A's side: compare the peer's keys with its own in the
// buckets that differ, and push or pull what differs.
func (n *Node) handleSummary(p *peer, m *message) {
	if m.round != p.round || m.from != p.roundFrom || !p.roundFrom.less(m.to) && !m.to.end() {
		return // a late answer to an earlier round, or a malformed one
	}
	p.roundTo = m.to
	push := &message{header: header{kind: msgPush}, round: m.round}
	// One budget for the items pushed and the keys pulled: a push that
	// holds one item larger than the budget (it goes alone) took a pull of
	// every key the peer listed on top, and 63 MiB with 2 MB of keys was
	// over the peer frame: the transport dropped it on every send, and the
	// round came again, identical, for good (found by review).
	budget := n.cfg.PushBytesMax
	pullsFull := false
	theirs := m.metas
	for _, b := range m.diff {
		if pullsFull {
			break // the push is full: nothing more goes in it
		}
		start := ""
		if b == m.from.bucket {
			start = m.from.key
		}
		// The peer's metas of bucket b, in key order, come first in theirs.
		k := 0
		for k < len(theirs) && bucketOf(theirs[k].key) == b {
			k++
		}
		tb := theirs[:k]
		theirs = theirs[k:]
		// Merge this node's items of b with the peer's, until the push is
		// full: past that nothing more can go this round (the same range
		// comes again), and walking on would make a round cost the whole
		// store where the peer holds little of it, a node catching up from
		// an empty directory (found by review).
		if !p.pushPartial {
			n.rep.bucketItems(b, start, func(it *Item, _ string) bool {
				if b == m.to.bucket && it.Key >= m.to.key {
					return false
				}
				for len(tb) > 0 && tb[0].key < it.Key {
					if !n.pullKey(push, &tb[0], &budget, p) {
						pullsFull = true
						return false
					}
					tb = tb[1:]
				}
				if len(tb) > 0 && tb[0].key == it.Key {
					c := it.Stamp.Compare(tb[0].stamp)
					if c < 0 && !n.pullKey(push, &tb[0], &budget, p) {
						pullsFull = true
						return false
					}
					tb = tb[1:]
					if c <= 0 {
						return true
					}
				}
				n.pushItem(push, it, &budget, p)
				return !p.pushPartial
			})
		}
		// The peer's keys past where the walk stopped: pull those this
		// node lacks or holds older, while the push has room.
		for i := 0; i < len(tb) && !pullsFull; i++ {
			if mine, held := n.rep.get(tb[i].key); !held || mine.Stamp.Less(tb[i].stamp) {
				pullsFull = !n.pullKey(push, &tb[i], &budget, p)
			}
		}
	}
	if len(push.items) == 0 && len(push.pull) == 0 {
		n.finishRound(p)
		return
	}
	p.exchanged = len(push.items) + len(push.pull)
	// Only durable items leave this node: an item lost here with an
	// unsynced batch must not live on at a peer (horizon.go).
	n.sendDurable(p, push)
}

// pushItem adds it to the push unless the budget is spent (the first item
// or key always goes, so a round makes progress; an item larger than the
// budget goes only alone).
func (n *Node) pushItem(push *message, it *Item, budget *int, p *peer) {
	if !n.takeBudget(push, itemBytes(it), budget, p) {
		return
	}
	push.items = append(push.items, *it)
	p.itemsSent++
}

// takeBudget takes size bytes of the push's budget, or, if they are not
// left and the push holds anything, reports false and marks the round's
// push partial (the same range comes again).
func (n *Node) takeBudget(push *message, size int, budget *int, p *peer) bool {
	if *budget < size && (len(push.items) > 0 || len(push.pull) > 0) {
		p.pushPartial = true
		return false
	}
	*budget -= size
	return true
}

// pullKey asks for the peer's item of t, unless this node would refuse it
// anyway (applyRemote). It reports false once the push has no room for
// the key: nothing more goes in it.
func (n *Node) pullKey(push *message, t *meta, budget *int, p *peer) bool {
	if !n.refusePoint().Less(t.stamp) {
		if _, held := n.rep.get(t.key); !held {
			return true
		}
	}
	if !n.takeBudget(push, pullBytes(t.key), budget, p) {
		return false
	}
	push.pull = append(push.pull, t.key)
	return true
}

// answerPush is P's side: apply what A pushed, and answer A's pulls once
// the pushed items are durable here.
func (n *Node) answerPush(from *peer, m *message) {
	n.applyRemote(m.items)
	ack := &message{header: header{kind: msgPushAck}, round: m.round}
	budget := n.cfg.PushBytesMax
	for _, key := range m.pull {
		it, ok := n.rep.get(key)
		if !ok {
			continue
		}
		size := itemBytes(&it)
		if budget < size && len(ack.items) > 0 {
			ack.partial = true
			break
		}
		budget -= size
		ack.items = append(ack.items, it)
	}
	n.sendDurable(from, ack)
}

// handlePushAck ends a round that exchanged items.
//
// The pulled items are taken even from the answer to a round given up:
// they are durable on the peer, as a replicate's are. An answer of 4 MiB
// over a link slower than about 16 Mbit/s arrives after RoundTimeout, and
// throwing it away made the node ask again, and the peer send the same
// items again, for as long as the link stayed that slow (found by review).
func (n *Node) handlePushAck(p *peer, m *message) {
	p.itemsFetched += int64(n.applyRemote(m.items))
	if m.round != p.round {
		return
	}
	if m.partial || p.pushPartial {
		// The same range again, now with less to send.
		p.round = 0
		n.scheduleRound(p, 0)
		return
	}
	n.finishRound(p)
}

// finishRound moves p's pass past the round's range; at the end of the
// buckets the pass is complete and the next one begins.
func (n *Node) finishRound(p *peer) {
	// A round that would have fit half the shorter timeout: the link got
	// faster, and a lost message should not cost the longer wait.
	if p.slow > 0 && 2*(n.env.Clock.Now()-p.roundAt) < int64(n.cfg.RoundTimeout<<(p.slow-1)) {
		p.slow--
	}
	p.round = 0
	p.unreachable = false
	p.cursor = p.roundTo
	if p.cursor.end() {
		counts := n.passCounts(p)
		if counts && !n.saveHighWater(p.passStart) {
			// The pass cannot count until the state saves: try again an
			// interval on, not at once (which spun a core on a full disk).
			n.scheduleRound(p, n.cfg.AntiEntropyInterval)
			return
		}
		p.passes++
		p.passAt = p.passBegan
		if counts {
			p.passDone = p.passStart
			n.updateStable()
		}
		n.noteCaughtUp()
		n.startPass(p)
	}
	if p.cursor == (cursor{}) && p.exchanged < n.burst() {
		n.scheduleRound(p, n.cfg.AntiEntropyInterval)
		return
	}
	n.scheduleRound(p, 0) // the pass is not over, or much was missing: go on at once
}

// passCounts reports whether p's pass, now complete, may count toward this
// node's stability point and p's refusal point (horizon.go): only a pass
// that began once this node had completed a pass with every peer since it
// started (caughtUp), and so pulled what each of them held.
//
// Why: the proof that a tombstone at or below the horizon is on every node
// rests on the node that stamped it, whose own later passes carried it to
// every peer. A node whose directory is lost takes that duty with it. Its
// delete that reached one peer Y, and not Z, was then carried by no one:
// the new directory's first passes, which begin above the delete's stamp
// (its clock is above its peers' once it joins), carried only what it held,
// which was not the delete; with them its stability point and Z's refusal
// point passed the delete, Y collected it while Z still held the value it
// deleted, and every node then refused that value back from Z, which served
// it for good (found by review). A node's first complete pass with each
// peer pulls every item the peer holds that it lacks, the lost
// directory's writes that reached that peer included (a peer drops the old
// directory's messages once it knows the new one, so none come later); the
// passes that begin after those carry them to every peer. A restart on the
// same directory waits the same extra passes: it costs a restarted node one
// pass with each peer before its tombstones go, and keeps the rule simple.
func (n *Node) passCounts(p *peer) bool {
	if n.cfg.Mutation == MutPassesNeverCount {
		return false
	}
	return !n.caughtUp.IsZero() && n.caughtUp.Less(p.passStart)
}

// noteCaughtUp takes a clock reading once this node has completed a pass
// with every peer since it started: passes that begin after it count
// (passCounts).
func (n *Node) noteCaughtUp() {
	if !n.caughtUp.IsZero() {
		return
	}
	for _, q := range n.peers {
		if q.passes == 0 {
			return
		}
	}
	n.caughtUp = n.hlc.Now(n.wall())
}

// burst is how many items a round must exchange for the next pass to follow
// at once: a sixteenth of a summary's keys.
func (n *Node) burst() int { return max(1, n.cfg.SummaryItemsMax/16) }

package realnet

import (
	"sync/atomic"
	"time"
)

// gathering holds back a waiting event loop's turn (Host.loopsWait) for a
// moment after a group commit's replies went out, until the clients that
// got them have sent their next requests, so that those join the next
// batch rather than miss it.
//
// Why: where the loop fsyncs inline, as Redis does, closed-loop clients
// split into two groups that take turns. The loop sends batch A's replies
// and at once reads what is ready: group B's requests, which arrived
// during A's fsync, and the few of A's clients that were quick. It commits
// those and blocks in B's fsync while the rest of A's clients answer, and
// they wait there for a whole cycle. At 50 clients of durable SETs a batch
// held 25 requests on average, two fsyncs for every 50 SETs. Waiting a
// bounded time for the clients just answered (awaited, counted per loop)
// makes one batch of about 50: the figures are in docs/PERFORMANCE.md.
//
// The wait never exceeds the time an fsync takes lately (syncAvg), counted
// from the replies' release, nor HostConfig.GatherWaitMax: a straggler
// left behind would wait a whole cycle, at least an fsync, so waiting
// less than that for it costs the requests at hand less than it saves. It
// ends at once when every awaited client has sent again. A loop waits only
// with a write in hand (reads alone commit nothing, so nothing would be
// joined) that nobody runs yet, so a lone client never waits: it is the
// one awaited. Without inline fsyncs (parked loops, a goroutine per
// connection) the fsync runs in the background and the next batch gathers
// during it: nothing here runs.
type gathering struct {
	// The node role holder's (Host.turn and conn.fill run there).
	// synced: an inline fsync ran in this turn, whose replies the next
	// turn releases; releasing: that turn's completions are running;
	// opened: the epoch of this release has begun (its first reply).
	synced, releasing, opened bool

	// epoch counts the releases that answered a client; at is monoNow
	// when the latest one began. A client answered in the current epoch
	// with nothing else owed is awaited (eloop.awaited) until it sends
	// again (conn.awaited holds its epoch).
	epoch atomic.Uint64
	at    atomic.Int64
	// syncAvg is a moving average of the inline fsyncs' durations, in
	// nanoseconds.
	syncAvg atomic.Int64
}

// How a gathering wait ended (Metrics.Gathered).
const (
	GatherAllSent  = "all_sent" // every awaited client sent again
	GatherTooSlow  = "too_slow" // requests came too slowly to be worth more waiting
	GatherDeadline = "deadline" // the release's deadline passed
)

// syncAvgWeight: each fsync moves syncAvg by 1/syncAvgWeight of its
// difference from it, so that a minute's swing of the disk's latency
// shows within some tens of batches.
const syncAvgWeight = 16

// noteSync records an inline fsync that took d: the next turn releases
// its replies.
func (g *gathering) noteSync(d time.Duration) {
	g.synced = true
	avg := g.syncAvg.Load()
	if avg == 0 {
		g.syncAvg.Store(int64(d))
		return
	}
	g.syncAvg.Store(avg + (int64(d)-avg)/syncAvgWeight)
}

// beginTurn is called as a turn starts, before it runs the node's own
// events (the completions of the last turn's fsync among them).
func (g *gathering) beginTurn() {
	g.releasing, g.opened = g.synced, false
	g.synced = false
}

// endRelease is called once the turn's completions have run.
func (g *gathering) endRelease() { g.releasing = false }

// answered is called on the node's role holder when c's last owed reply
// goes out. In a turn that releases a sync's replies, c is awaited.
func (g *gathering) answered(h *Host, c *conn) {
	if !g.releasing || c.lp == nil {
		return
	}
	if !g.opened {
		// The first reply of this release: a new epoch, whose awaited
		// start from none (a client of the last one that has not sent
		// again is no longer waited for).
		g.opened = true
		g.epoch.Add(1)
		g.at.Store(int64(monoNow()))
		for _, lp := range h.loops {
			lp.awaited.Store(0)
		}
	}
	c.awaited.Store(g.epoch.Load())
	c.lp.awaited.Add(1)
}

// sent is called on c's loop when c posts the requests of b: if it was
// awaited, it is no more. A client counted in an epoch that has ended is
// not taken off the count of the next (which started from none without
// it). A write among them is noted for the loop's pass: only a turn that
// will commit a batch is worth holding back.
func (g *gathering) sent(c *conn, b *requestBatch) {
	c.lp.passRequests += len(b.slots)
	if !c.lp.passWrites {
		for _, s := range b.slots {
			if s.req != nil && s.req.Writes() {
				c.lp.passWrites = true
				break
			}
		}
	}
	e := c.awaited.Load()
	if e == 0 || !c.awaited.CompareAndSwap(e, 0) {
		return
	}
	if e == g.epoch.Load() {
		c.lp.awaited.Add(-1)
	}
}

// deadline is when a loop stops waiting for this epoch's awaited clients,
// in monoNow's terms, or 0 where it does not wait.
func (g *gathering) deadline(waitMax time.Duration) time.Duration {
	at := time.Duration(g.at.Load())
	if at == 0 || waitMax <= 0 {
		return 0
	}
	return at + min(waitMax, time.Duration(g.syncAvg.Load()))
}

// worthWaiting reports whether a loop that holds a turn back should wait
// on: whether the requests that came meanwhile (came, in elapsed) come
// fast enough that what each gains by joining this batch, about an fsync
// (syncAvg) that it would otherwise wait out, outweighs what the inHand
// requests lose, each waiting as long as the turn is held. (The gain is
// larger, as a straggler also waits for the next batch's own work: the
// rule leans towards committing.) For the first probe of the wait there
// is too little to judge by, and it waits.
//
// At 50 clients with a request in flight each, about 25 requests are in
// hand and the other 25 come back within a fraction of an fsync: it
// waits. At 16 pipelined requests a client, 400 are in hand, and the
// load generator's time to read 800 replies and send the next 800 spreads
// the rest over more than an fsync: the probe's arrivals say so, and the
// turn runs.
func worthWaiting(came, inHand int, elapsed, probe, syncAvg time.Duration) bool {
	if elapsed < probe {
		return true
	}
	return int64(came)*int64(syncAvg) >= int64(inHand)*int64(elapsed)
}

// gatherProbeShare and gatherProbeMin: a wait's first stretch, a
// syncAvg/gatherProbeShare and at least gatherProbeMin, is taken before
// worthWaiting judges by what came in it, and the loop judges again at
// least that often.
const (
	gatherProbeShare = 8
	gatherProbeMin   = 10 * time.Microsecond
)

package sim

import (
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"dkv/core"
)

// host runs one node the way realnet's Host does, in virtual time: events
// for the node (client requests, peer messages, due timers) wait in an
// inbox; a turn hands the node every event that has arrived, up to a limit,
// then calls Flush; replies leave when the node calls them. Unlike realnet
// it can kill the node at any event — between turns, in the middle of one,
// or inside a disk call — and restart it from what its disk holds.
type host struct {
	s     *Sim
	id    int
	addr  Addr
	disk  *Disk     // the simulated disk, for crashes and faults
	cdisk core.Disk // what the node sees: disk, or a test's wrapper of it
	clock *clock
	rand  *rand.Rand // the node's Rand: one stream for the node's whole run, so each restart draws on, deterministically
	node  core.Node
	upAt  int64        // virtual time of the node's last start
	idx   core.Indexes // the node's indexes, if the seed runs them
	// rejoin: the node started on an empty disk (at the run's start, or
	// wiped by Sim.wipe, or replaced by Sim.replaceDisk), and has not
	// been seen done rejoining since (seeRejoined); lost: that disk
	// replaced a lost one.
	rejoin, lost bool
	// started: the node's Start returned, and it has not crashed since
	// (a crash in Start finds a node whose state is half read).
	started bool
	// stood: the node was seen at a term above 0 (a cluster node's Raft):
	// it has voted, for itself or another (canReplace).
	stood bool
	// undone: the node answered a write that failed to persist in this
	// turn; its indexes are checked once the turn ends.
	undone bool
	up     bool
	// incarnation counts starts; timers and replies of an earlier one are
	// ignored, as a dead process's would be.
	incarnation int
	inbox       []inboxItem
	turn        *Scheduled
	busyUntil   int64 // the node is still in its last turn's disk calls until then
	restart     *Scheduled
	// full: a disk-full episode is on, with capacity bytes.
	full     bool
	capacity int64
	// refused: the last start failed because of an injected disk fault.
	refused bool
	// gone: the node refused to start from a disk that a fault of synced
	// data had hit, rightly, and stays down (an operator would restore
	// it from a backup or a peer); the refusal, for the run's report.
	gone string
	// outstanding counts requests the current incarnation took and has not
	// answered: it must reach zero once clients are quiet.
	outstanding int
	// taken lists requests the current incarnation took, for settling
	// their effect time if it dies before answering; unsettled holds those
	// of a dead incarnation until a restart settles what the disk kept.
	taken, unsettled []*attempt
	// writeFails counts the disk's failed writes (I/O errors, no space)
	// as of writeFailAt, the end of the last turn that saw one more: a
	// single node retries an expiry whose batch failed a second later.
	writeFails  int
	writeFailAt int64
	// Counters, for the run's report.
	Turns, Crashes, Starts, FlushErrors int
	collected                           int // tombstones a mesh node's ended incarnations collected
}

// inboxItem is one event waiting for the node's next turn.
type inboxItem struct {
	req   *request // a client request, or
	from  Addr     // a peer message from from, or
	msg   []byte
	timer *timer // a due timer, or
	fn    func() // a background sync's outcome
}

// request is a client request on the wire.
type request struct {
	a   *attempt
	req *core.Request
}

// Conn is the connection the request travels on (Streamed).
func (r *request) Conn() int { return r.a.conn }

// response is a reply on the wire.
type response struct {
	a    *attempt
	resp core.Response
}

// Conn is the connection of the request it answers.
func (r *response) Conn() int { return r.a.conn }

// midTurnCrash is the panic value of a crash the host injects between two
// events of a turn.
type midTurnCrash struct{ after int }

// protect runs f, turning an injected crash into a crash of the node and
// any other panic into a finding. It reports whether f ran to completion.
func (h *host) protect(what string, f func()) (ok bool) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		ok = false
		switch c := v.(type) {
		case *CrashPoint:
			h.s.trace(h.addr, "crash-io", int64(h.incarnation), 0, c.String())
			h.crash(c.String(), h.s.chance(h.s.mix.PowerLoss))
		case midTurnCrash:
			h.s.trace(h.addr, "crash-turn", int64(h.incarnation), int64(c.after), what)
			h.crash(fmt.Sprintf("in a turn, after %d events, before Flush", c.after), h.s.chance(h.s.mix.PowerLoss))
		default:
			h.s.fail("node", fmt.Sprintf("node %d panicked in %s: %v\n%s", h.id, what, v, debug.Stack()))
			h.up = false
		}
	}()
	f()
	return true
}

// receive takes a message that arrived for the node.
func (h *host) receive(from Addr, msg any) {
	switch m := msg.(type) {
	case *request:
		if !h.up {
			// Nothing listens on the port: the client learns at once that
			// the request went nowhere.
			h.s.trace(h.addr, "refused", m.a.id, 0, "")
			resp := core.ErrorResponse(core.CodeUnavailable, "connection refused: node %d is down", h.id)
			h.s.net.Send(h.addr, from, &response{a: m.a, resp: resp})
			return
		}
		h.inbox = append(h.inbox, inboxItem{req: m})
	case []byte:
		if !h.up {
			return
		}
		// A duplicated message is delivered twice: each delivery gets its
		// own copy, so a node that keeps or edits it cannot affect the other.
		h.inbox = append(h.inbox, inboxItem{from: from, msg: append([]byte(nil), m...)})
	default:
		panic(fmt.Sprintf("sim: node %d got a %T", h.id, msg))
	}
	h.scheduleTurn()
}

func (h *host) timerDue(t *timer) {
	if t.done || !h.up || t.incarnation != h.incarnation {
		return
	}
	h.inbox = append(h.inbox, inboxItem{timer: t})
	h.scheduleTurn()
}

// scheduleTurn makes sure a turn will run, once the node is done with the
// disk calls of its last one. Events that arrive before the turn runs join
// it, as events queued in realnet's channel do.
func (h *host) scheduleTurn() {
	if h.turn.Pending() {
		return
	}
	h.turn = h.s.w.At(max(h.s.w.now, h.busyUntil), h.runTurn)
}

func (h *host) runTurn() {
	if !h.up || len(h.inbox) == 0 {
		return
	}
	n := min(len(h.inbox), h.s.mix.TurnMax)
	drained := n == len(h.inbox)
	items := make([]inboxItem, n)
	copy(items, h.inbox)
	h.inbox = append(h.inbox[:0], h.inbox[n:]...)
	crashAfter := -1
	if h.s.chaos() && h.s.chance(h.s.mix.MidTurnCrash) {
		crashAfter = h.s.r.IntN(n + 1)
	}
	h.Turns++
	h.s.trace(h.addr, "turn", int64(n), int64(len(h.inbox)), "")
	var flushErr error
	incarnation := h.incarnation
	ok := h.protect("turn", func() {
		for i := range items {
			if i == crashAfter {
				panic(midTurnCrash{after: i})
			}
			h.deliver(&items[i])
			if incarnation != h.incarnation {
				// An item of the turn stopped the process (a graceful
				// stop's exit, stopGracefully): the rest of the turn
				// never happens. Handed on, they were answered by the
				// stopped node (cluster seed 253: a held get answered
				// after the exit).
				return
			}
		}
		if crashAfter == n {
			panic(midTurnCrash{after: n})
		}
		flushErr = h.node.Flush()
	})
	// A turn takes at least a nanosecond: its replies leave strictly before
	// the next turn starts, so the two turns' requests have disjoint windows
	// (porcupine's intervals are closed, and touching ones count as
	// concurrent).
	h.busyUntil = h.s.w.now + int64(h.disk.TakeLatency()) + 1
	if !ok || incarnation != h.incarnation {
		return
	}
	if flushErr != nil {
		// The node has stopped, as the contract says: restart it from disk.
		h.FlushErrors++
		h.s.trace(h.addr, "flush-error", int64(h.incarnation), 0, flushErr.Error())
		h.crash("Flush failed: "+flushErr.Error(), h.s.chance(h.s.mix.PowerLoss))
		return
	}
	if msg := h.s.checkExpiryPrompt(h, drained); msg != "" {
		h.s.fail("expiry", msg)
		return
	}
	if h.undone || (h.idx != nil && h.Turns%indexCheckTurns == 0) {
		when := "after a write failed to persist"
		if !h.undone {
			when = fmt.Sprintf("at turn %d", h.Turns)
		}
		h.undone = false
		if msg := h.s.checkIndexes(h, when); msg != "" {
			h.s.fail("indexes", msg)
			return
		}
	}
	if len(h.inbox) > 0 {
		h.scheduleTurn()
	}
}

func (h *host) deliver(it *inboxItem) {
	switch {
	case it.req != nil:
		h.outstanding++
		it.req.a.handled, it.req.a.takenAt = true, h.s.w.now
		if it.req.a.req.View != "" {
			// A page of a consistent scan reads its view, of the
			// instant of the walk's first page: its window starts
			// there, not when a node took it.
			it.req.a.takenAt = it.req.a.op.Call
		}
		if len(h.taken) > 2*h.outstanding+64 {
			h.taken = slices.DeleteFunc(h.taken, func(a *attempt) bool { return a.replied })
		}
		h.taken = append(h.taken, it.req.a)
		h.s.trace(h.addr, "request", it.req.a.id, 0, it.req.req.Op)
		h.handleRequest(it.req) // through the codec (wire.go)
	case it.fn != nil:
		h.s.trace(h.addr, "sync-done", 0, 0, "")
		it.fn()
	case it.timer != nil:
		if it.timer.done {
			return // stopped after it fell due: it must not run
		}
		it.timer.done = true
		h.s.trace(h.addr, "timer", 0, 0, "")
		it.timer.f()
	default:
		h.s.trace(h.addr, "message", int64(it.from), int64(len(it.msg)), "")
		h.node.HandleMessage(core.NodeID(it.from), it.msg)
	}
}

// replyFunc is the ReplyFunc of one request. The reply leaves when the node
// calls it, after whatever disk time the turn has taken so far.
func (h *host) replyFunc(r *request) core.ReplyFunc {
	replied := false
	incarnation := h.incarnation
	return func(resp core.Response) {
		if replied {
			h.s.fail("node", fmt.Sprintf("node %d replied twice to request %d (%s): %+v", h.id, r.a.id, r.req.Op, resp))
			return
		}
		replied = true
		if incarnation != h.incarnation {
			h.s.fail("node", fmt.Sprintf("node %d replied to request %d from an earlier incarnation", h.id, r.a.id))
			return
		}
		h.outstanding--
		if resp.Error != nil && (resp.Error.Code == core.CodeDiskFull || resp.Error.Code == core.CodeIOError) {
			h.undone = true
		}
		r.a.replied = true
		r.a.answer = &resp
		if h.s.mode.Mesh {
			h.s.checkQuorumHeld(h.id, r.req, &resp)
		}
		r.a.effectBy = h.s.w.now + int64(h.disk.Latency())
		code, value := "", ""
		if resp.Error != nil {
			code = resp.Error.Code
		}
		if resp.Value != nil {
			value = *resp.Value
		}
		h.s.trace(h.addr, "reply", r.a.id, int64(len(value)), code+value)
		m := &response{a: r.a, resp: resp}
		if lat := h.disk.Latency(); lat > 0 {
			h.s.w.After(lat, func() { h.s.net.Send(h.addr, r.a.c.addr, m) })
			return
		}
		h.s.net.Send(h.addr, r.a.c.addr, m)
	}
}

// crash kills the node: with powerLoss the machine loses what was not
// synced, otherwise the process alone dies. During the chaos phase a
// restart is scheduled; afterwards the run restarts nodes itself.
func (h *host) crash(why string, powerLoss bool) {
	if !h.up {
		return
	}
	h.seeTerm()
	if h.started && (h.rejoin || h.lost) && !h.waiting() {
		// Seen done rejoining (seeRejoined) before it goes down: a node
		// down since it was done, its disk saying so, counted as still
		// lost, and its peers' damaged disks were left unreplaced while
		// the cluster formed (found by review: seed 21413).
		h.rejoin, h.lost = false, false
	}
	h.up, h.started = false, false
	if n, ok := h.node.(interface{ Collected() int }); ok {
		h.collected += n.Collected() // what this incarnation collected
	}
	h.incarnation++
	h.Crashes++
	h.inbox = h.inbox[:0]
	h.turn.Cancel()
	h.outstanding = 0
	for _, a := range h.taken {
		if !a.replied {
			h.unsettled = append(h.unsettled, a)
		}
	}
	h.taken = h.taken[:0]
	kind := "process"
	if powerLoss {
		kind = "power"
		h.disk.Crash()
	} else {
		h.disk.ProcessCrash()
	}
	h.disk.TakeLatency()
	h.s.trace(h.addr, "crash", int64(h.incarnation), 0, kind+": "+why)
	h.scheduleRestart(h.s.restartDelay())
}

func (h *host) scheduleRestart(d time.Duration) {
	if h.restart.Pending() {
		return
	}
	h.restart = h.s.w.After(d, h.start)
}

// start starts a fresh node on what the disk holds, and runs its first
// turn (Start, then Flush), as realnet does.
func (h *host) start() {
	if h.up || h.s.stopped || h.gone != "" {
		return
	}
	h.incarnation++
	h.Starts++
	faults := h.disk.injected()
	// After a start refused because of an injected fault (a read bit
	// flip, an I/O error, a full disk), the operator starts the node again
	// and the fault, being transient, is gone: this start must succeed.
	clean := h.refused
	if clean {
		f := h.disk.Faults()
		f.ReadFlipProb, f.SyncErrorProb, f.WriteErrorProb, f.CapacityBytes = 0, 0, 0, 0
		f.SyncDirErrorEvery = 0
		f.CorruptProb, f.LatentProb, f.MisdirectProb = 0, 0, 0
		h.disk.SetFaults(f)
	}
	h.node = h.s.newNode(h.id)
	h.up, h.upAt = true, h.s.w.now
	if step := int64(h.s.mode.ClockStep); step > 0 {
		h.clock.wallStep = h.s.cr.Int64N(2*step+1) - step
	}
	h.outstanding = 0
	env := core.Env{
		ID:      core.NodeID(h.id),
		Clock:   h.clock,
		Network: peerNetwork{h},
		Disk:    h.cdisk,
		Rand:    h.rand,
		Logf:    h.logf,
	}
	var err error
	incarnation := h.incarnation
	ok := h.protect("start", func() {
		if err = h.node.Start(env); err == nil {
			err = h.node.Flush()
		}
	})
	if clean {
		h.disk.SetFaults(h.s.diskFaults(h))
	}
	h.busyUntil = h.s.w.now + int64(h.disk.TakeLatency())
	if !ok || incarnation != h.incarnation {
		return // crashed while recovering; a restart is scheduled
	}
	if err == nil {
		// What the dead incarnations' requests did is now settled: their
		// records were recovered or they are gone for good.
		for _, a := range h.unsettled {
			a.effectBy = h.s.w.now
		}
		h.unsettled = h.unsettled[:0]
		h.refused, h.started = false, true
		h.s.trace(h.addr, "started", int64(h.incarnation), 0, "")
		if msg := h.s.checkIndexes(h, "after recovery"); msg != "" {
			h.s.fail("indexes", msg)
			return
		}
		if n := h.s.mix.ReadAfterStart; n > 0 && h.s.phase == phaseChaos {
			for _, c := range h.s.clients {
				c.getsOwed = n
			}
		}
		if w := h.s.watch; w != nil {
			if v := w.Started(h.id, h.node); v != "" {
				h.s.fail("raft", v)
				return
			}
		}
		if len(h.inbox) > 0 {
			h.scheduleTurn()
		}
		return
	}
	h.up = false
	h.disk.ProcessCrash()
	// Refusing to start is right when the disk failed a call or a read
	// flipped a bit: a checksum failure must not be trusted, and an fsync
	// failure is fatal. Anything else is a finding.
	// A transient unreadable sector is one too, even on a clean start:
	// each is consumed by the read that fails.
	if injected := h.disk.injected() - faults; injected > 0 || h.full && !clean {
		h.refused = true
		h.s.trace(h.addr, "start-refused", int64(h.incarnation), injected, err.Error())
		h.scheduleRestart(time.Millisecond)
		return
	}
	// Refusing to start from a file that a fault of synced data hit (and
	// saying which) is right: the damage may have taken acknowledged
	// writes, and serving without them would be wrong.
	for _, name := range h.disk.Damaged() {
		if strings.Contains(err.Error(), name) {
			h.s.trace(h.addr, "refused-damaged", int64(h.incarnation), 0, err.Error())
			if h.s.mode.Wipes && h.s.canReplace(h) {
				h.s.replaceDisk(h)
				return
			}
			h.gone = fmt.Sprintf("node %d refused to start: %v", h.id, err)
			h.s.nodeGone()
			return
		}
	}
	why := ""
	if clean {
		why = " on a disk without faults, after a start refused because of an injected fault"
	}
	h.s.fail("recovery", fmt.Sprintf("node %d failed to start%s: %v\n  disk: %s", h.id, why, err, h.disk.Describe()))
}

// Later implements AsyncHost: the fsync runs unless the node has died
// meanwhile (a dead process's fsync may or may not have happened; the crash
// already decided what the disk kept).
func (h *host) Later(d time.Duration, f func()) {
	incarnation := h.incarnation
	h.s.w.After(d, func() {
		if h.up && h.incarnation == incarnation {
			f()
		}
	})
}

// Deliver implements AsyncHost: f runs in a turn of the node, as a posted
// event does in realnet.
func (h *host) Deliver(d time.Duration, f func()) {
	incarnation := h.incarnation
	h.s.w.After(d, func() {
		if h.up && h.incarnation == incarnation {
			h.inbox = append(h.inbox, inboxItem{fn: f})
			h.scheduleTurn()
		}
	})
}

func (h *host) logf(format string, args ...any) {
	h.s.trace(h.addr, "log", 0, 0, fmt.Sprintf(format, args...))
}

// peerNetwork is a node's core.Network: bytes, copied, onto the simulated
// network, so the codec runs in every simulated exchange.
type peerNetwork struct{ h *host }

func (p peerNetwork) Send(to core.NodeID, msg []byte) {
	if !p.h.up {
		return
	}
	if w := p.h.s.watch; w != nil {
		if v := w.Sent(p.h.id, msg); v != "" {
			p.h.s.fail("raft", v)
		}
	}
	p.h.s.net.Send(p.h.addr, NodeAddr(int(to)), append([]byte(nil), msg...))
}

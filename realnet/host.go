package realnet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"dkv/core"
)

// event is one unit of work for the node: a request, a timer callback, a
// peer message. It runs on whichever goroutine holds the node's role, and
// must not block.
type event func()

// queued is an event in the host's queue, with the number of requests it
// carries (a connection posts every request of one read as one event), or
// 1 for any other event: what EventsPerTurnMax counts.
type queued struct {
	ev       event
	batch    *requestBatch // a connection's requests, in place of ev
	requests int
}

// run runs the queued event.
func (q *queued) run() {
	if q.batch != nil {
		q.batch.run()
		return
	}
	q.ev()
}

// Host runs one core.Node and serves its clients over TCP.
//
// The node is run by one goroutine at a time, in turns: a turn runs the
// queued events, up to EventsPerTurnMax, then Flush. Running the node is a
// role, not a goroutine. Whoever queues an event while nobody runs the node
// (a connection's reader, a finished fsync, a timer) takes the role and
// runs turns itself until the queue is empty, or until inlineTurnsMax turns,
// when it hands the role to the loop goroutine of Run. A lone request thus
// goes from its reader through the node, the fsync and the reply without
// waking another goroutine: each hand-off between goroutines costs a
// wake-up and often a move between CPUs, tens of microseconds on a VM, and
// together they had cost a lone client a quarter of its latency.
type Host struct {
	node core.Node
	disk core.Disk
	cfg  HostConfig
	logf func(format string, args ...any)
	// metrics hears of requests, connections and fsyncs (SetMetrics);
	// nil: nothing is measured. samples gathers a turn's answered
	// requests for it; only the holder of the role touches it.
	metrics Metrics
	samples []RequestSample
	// auth is the digest of the client port's password (auth.go); nil:
	// none is asked. SetAuthSecret replaces it.
	auth atomic.Pointer[authDigest]
	// scans is the RESP SCAN cursor table (resp_scan.go), shared by
	// every connection, as a client's pooled connections share a walk.
	scans *scanCursors
	// tlsLog rate-limits the lines about failed TLS handshakes, which
	// anyone who reaches the port can cause (tls.go).
	tlsLog *logLimiter
	// refuseLog rate-limits the lines about connections refused past
	// ConnsMax: a flood of them logged a line each.
	refuseLog *logLimiter

	// wake has room for one token: "the loop goroutine should look at the
	// queue": the role was handed over, or Run is stopping.
	wake     chan struct{}
	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	// stopAsked is set with stop, for runners to check between turns.
	stopAsked atomic.Bool
	ready     chan struct{} // closed once the node has recovered and accepts run
	loopDone  chan struct{} // closed when the loop has exited; posts fail from then on
	addr      net.Addr

	qmu   sync.Mutex
	queue []queued // at most EventQueueMax: posters wait for room (enqueue)
	// roomMade, made by a poster that found the queue full, is closed by
	// the turn that takes events from it. Under qmu, like the queue's
	// length, which is the count: a channel of tokens cost two channel
	// operations per event, 1.2% of the samples at GET c50.
	roomMade chan struct{}
	taken    bool  // a goroutine holds the role of running the node
	handed   bool  // the role was handed to the loop goroutine
	closed   bool  // no more events are taken: the loop has exited
	failed   error // a Flush failed: the node has stopped for good

	syncsInFlight    atomic.Int64
	backgroundSyncs  atomic.Int64 // fsyncs started on a goroutine of their own, ever (for the tests)
	heldSyncs        atomic.Int64 // fsyncs made raw on a waiting loop (syncFile.syncHeld), ever (for the tests)
	requestsInFlight atomic.Int64 // posted to the node and not yet answered
	// requestsAnswered counts the requests answered since the start, by
	// the node or by the host itself (a PING, a refused line), for INFO's
	// total_commands_processed. Counted before the answer can leave, so
	// an INFO never lags one its client already has (a count once a turn
	// did: found by review); beside requestsInFlight, whose line the
	// reply path writes anyway.
	requestsAnswered atomic.Int64
	// local holds events the node's runner queued for itself (an fsync done
	// inline reports in a later turn, as the contract asks). Only the
	// holder of the role touches it, and turnEvents.
	local      []event
	turnEvents []queued
	// dirty lists the connections that got replies in the current turn;
	// the turn ends by sending each one's replies with one write
	// (flushReplies). Only the holder of the role touches it.
	dirty []*conn

	// started is when Run started; connIDs numbers RESP connections
	// (CLIENT ID).
	started time.Time
	connIDs atomic.Uint64
	// For INFO's clients section: connections taken and refused at
	// ConnsMax.
	connsTaken   atomic.Int64
	connsRefused atomic.Int64
	// rejects counts the refusals under way (reject), at most rejectsMax.
	rejects atomic.Int64

	// loops are the event loops (HostConfig.EventLoops), nextLoop the
	// one the next connection goes to (under mu).
	loops    []*eloop
	nextLoop uint64
	// loopsWait: the loops are fewer than the runtime's processors, so
	// each may hold one while it waits (eloop.runWaiting), fsyncs run
	// inline and posts go to a loop. Set by NewHost. postLoop is the loop
	// that posts wake, once the loops run.
	loopsWait bool
	postLoop  atomic.Pointer[eloop]
	// gather holds a waiting loop's turn back for the clients a sync's
	// replies just answered (gather.go); each wait is reported to the
	// metrics (Metrics.Gathered).
	gather gathering
	// prepare is HostConfig.Prepare where the connections' requests are
	// read in parallel (several loops, or a goroutine a connection), and
	// nil where one loop reads them all: there, a value's analysis (~30
	// µs for 1 KB of text) would lengthen every pass of the loop that
	// every request waits for, while the indexes' own goroutine does it as
	// well off the loop (core.Indexes.Put analyses what was not
	// prepared). Set by NewHost.
	prepare func(*core.Request)

	mu      sync.Mutex
	running bool
	closing bool // no more connections are registered
	conns   map[*conn]struct{}
	// batchesMade counts the requestBatch objects connections allocated
	// (for the tests: one a connection that never pipelines).
	batchesMade atomic.Int64
	wg          sync.WaitGroup // the accept goroutine and every connection goroutine
}

// NewHost prepares a host for node on disk. The node starts in Run.
func NewHost(node core.Node, disk core.Disk, cfg HostConfig) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logf := cfg.Logf
	if logf == nil {
		logf = log.Printf
	}
	// Loops may hold their processors while they wait only if one is
	// left for everything else: the timers, the accept loop, the peers,
	// the collector.
	loopsWait := cfg.EventLoops > 0 && cfg.EventLoops < runtime.GOMAXPROCS(0)
	prepare := cfg.Prepare
	if cfg.EventLoops == 1 {
		prepare = nil // one goroutine reads every connection: see Host.prepare
	}
	h := &Host{
		node:      node,
		disk:      disk,
		cfg:       cfg,
		logf:      logf,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		ready:     make(chan struct{}),
		loopDone:  make(chan struct{}),
		conns:     make(map[*conn]struct{}),
		taken:     true, // by Run, until the node has started
		loopsWait: loopsWait,
		prepare:   prepare,
		tlsLog:    &logLimiter{out: logf, last: make(map[string]*logLine)},
		refuseLog: &logLimiter{out: logf, last: make(map[string]*logLine)},
		scans:     newScanCursors(),
	}
	h.auth.Store(newAuthDigest(cfg.AuthSecret))
	return h, nil
}

// Ready is closed once the node has recovered and the host accepts clients.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Addr is the listener's address, or nil until Ready is closed.
func (h *Host) Addr() net.Addr {
	select {
	case <-h.ready:
		return h.addr
	default:
		return nil
	}
}

// Shutdown asks Run to return: the loop finishes its current turn, Flush
// included, then connections get the responses that are ready and close. It
// does not wait; Run's return is the end.
func (h *Host) Shutdown() {
	h.stopOnce.Do(func() {
		h.stopAsked.Store(true)
		close(h.stop)
	})
}

// Run is RunListen with a listener bound already, so clients that connect
// during recovery wait unanswered until it ends. Run closes ln.
func (h *Host) Run(ctx context.Context, ln net.Listener) error {
	used := false
	err := h.RunListen(ctx, func() (net.Listener, error) {
		used = true
		return ln, nil
	})
	if !used {
		ln.Close()
	}
	return err
}

// RunListen starts the node on the calling goroutine, which becomes the
// loop, then calls listen and serves clients from its listener until ctx is
// done, Shutdown is called or the node fails. A node error (from Start or
// Flush) is returned and is fatal: the node has stopped and must be
// restarted from disk. RunListen closes the listener.
//
// The port is bound only once the node has recovered, so that a client
// that connects during a long recovery is refused at once ("connection
// refused"; a cluster client moves on to another node) instead of waiting
// with no answer. A listen error comes after recovery too, and stops the
// node as a Shutdown would; listen is not called if Shutdown came first.
func (h *Host) RunListen(ctx context.Context, listen func() (net.Listener, error)) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("realnet: Host.Run called twice")
	}
	h.running = true
	h.started = time.Now()
	h.mu.Unlock()

	env := core.Env{
		ID:      h.cfg.ID,
		Clock:   &clock{origin: time.Now(), post: h.post},
		Network: h.network(),
		Disk:    syncDisk{Disk: h.disk, h: h},
		Rand:    newRand(),
		Logf:    h.logf,
	}
	// Start is the first turn: it may leave work (say, a truncated torn
	// tail) that only Flush makes durable.
	err := h.node.Start(env)
	if err == nil {
		err = h.node.Flush()
	}
	if err != nil {
		close(h.loopDone)
		return fmt.Errorf("node failed to start: %w", err)
	}
	// Bind while still holding the role: what arrives meanwhile queues.
	var ln net.Listener
	var listenErr error
	if !h.stopAsked.Load() {
		if ln, listenErr = listen(); listenErr != nil {
			h.Shutdown()
		}
	}
	// Run held the role from NewHost on, so that nothing that arrived
	// during Start (a peer's message, a timer) ran the node beside it. Let
	// go of it, handing what queued meanwhile to the loop.
	h.qmu.Lock()
	if len(h.queue) > 0 || len(h.local) > 0 {
		h.handed = true
		h.qmu.Unlock()
		h.signalLoop()
	} else {
		h.taken = false
		h.qmu.Unlock()
	}

	if ln != nil {
		if err := h.startLoops(); err != nil {
			ln.Close()
			ln = nil
			listenErr = err
			h.Shutdown()
		}
	}
	if ln != nil {
		h.addr = ln.Addr()
		h.wg.Add(2)
		go h.accept(ln)
		go h.logFlushLoop()
		close(h.ready)
	}

	err = h.loop(ctx)

	h.qmu.Lock()
	h.closed = true
	h.qmu.Unlock()
	close(h.loopDone)
	if ln != nil {
		ln.Close()
	}
	h.closeConns()
	h.wg.Wait()
	if listenErr != nil {
		return errors.Join(fmt.Errorf("cannot listen: %w", listenErr), err)
	}
	return err
}

// inlineTurnsMax bounds the turns a goroutine that took the role runs
// before it hands the role to the loop goroutine. A reader that runs the
// node does not read its own connection meanwhile, so it must not be kept
// at it by other connections' traffic; two turns carry a lone write through
// (the fsync is reported in the turn after it ran).
const inlineTurnsMax = 2

// loopTurnsMax bounds the turns the loop goroutine runs in a row before it
// looks at its channels again.
const loopTurnsMax = 64

// loop is Run's goroutine. It runs the node whenever the role is handed to
// it, and on shutdown or a failure takes the role for good.
func (h *Host) loop(ctx context.Context) error {
	// A cancelled ctx is a Shutdown, which runners notice between turns:
	// under a load that never lets the queue empty, the loop itself would
	// otherwise look up from its turns too seldom.
	defer context.AfterFunc(ctx, h.Shutdown)()
	for {
		if h.stopAsked.Load() {
			return h.finish()
		}
		select {
		case <-h.wake:
		case <-ctx.Done():
			return h.finish()
		case <-h.stop:
			return h.finish()
		}
		h.qmu.Lock()
		if h.failed != nil {
			err := h.failed
			h.qmu.Unlock()
			return fmt.Errorf("node stopped: %w", err)
		}
		if !h.handed {
			h.qmu.Unlock()
			continue
		}
		h.handed = false
		h.qmu.Unlock()
		if !h.runTurns(loopTurnsMax) {
			return fmt.Errorf("node stopped: %w", h.failure())
		}
	}
}

func (h *Host) failure() error {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	return h.failed
}

// post queues ev for the node and, if nobody is running the node, runs it
// here; where the event loops wait holding their processors (loopsWait), it
// wakes a loop to run it instead. It blocks while the queue is full, and
// reports false once the loop has exited.
//
// Why the hand-off to a loop: there every fsync runs inline, and one run
// on a peer's or a timer's goroutine held the one processor the loop had
// left the runtime, so the runtime's sysmon took it back 20 µs into every
// fsync and woke another thread for it: on a cluster's leader, sysmon was
// 10% of the samples and task switching 19%, against 1% and 10.5% with
// every turn on the loop, and 6% less CPU per write (cmd/bench cluster,
// both builds in the same run).
func (h *Host) post(ev event) bool {
	lp := h.postLoop.Load()
	if lp == nil {
		return h.enqueue(queued{ev: ev}, true)
	}
	if !h.enqueue(queued{ev: ev}, false) {
		return false
	}
	lp.wake()
	return true
}

// Post runs f on the node's goroutine, in a turn (which Flush ends) like a
// timer's callback: for a host-side helper of the node that answers it
// from a goroutine of its own, as cmd/node's index worker answers a
// search. It blocks while the node's queue is full, so a helper the node
// may itself wait on must call it from a goroutine that the node does not
// wait on. It reports false, and f never runs, once the node has stopped.
func (h *Host) Post(f func()) bool { return h.post(f) }

// gatherable reports whether a loop may hold the next turn back for
// stragglers (eloop.gatherStragglers): requests wait, nobody runs the node,
// and the node has none of its own events (a sync's completion) to run.
func (h *Host) gatherable() bool {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	return !h.taken && len(h.queue) > 0 && len(h.local) == 0
}

// runnable reports whether events wait and nobody runs the node.
func (h *Host) runnable() bool {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	return h.waiting()
}

// takeRunnable takes the role if events wait and nobody runs the node.
func (h *Host) takeRunnable() bool {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	if !h.waiting() {
		return false
	}
	h.taken = true
	return true
}

// waiting reports, under qmu, whether events wait and nobody runs the
// node. The node's own events (local) count: a waiting loop puts the role
// down with them pending (runTurnsOn). local is read only while nobody
// holds the role, whose last holder wrote it before it let go of qmu.
func (h *Host) waiting() bool {
	return !h.taken && (len(h.queue) > 0 || len(h.local) > 0)
}

// postRequests is post for an event that handles n client requests, which
// is refused from the moment Run starts stopping: the requests already
// queued are served, and a shutdown under a load that never lets up still
// ends.
func (h *Host) postRequests(b *requestBatch) bool {
	return h.enqueue(queued{batch: b, requests: max(len(b.slots), 1)}, true)
}

// postDeferred is postRequests for an event loop: it never runs the node
// here, so that the loop reads every connection that is ready before one
// turn takes all their requests (runQueued, at the end of the loop's pass).
// Running the node at the first connection's request would give that
// request a turn (and, with nothing in flight, an fsync) of its own.
func (h *Host) postDeferred(b *requestBatch) bool {
	return h.enqueue(queued{batch: b, requests: max(len(b.slots), 1)}, false)
}

// runQueued runs the node here if anything is queued and nobody runs it:
// an event loop at the end of its pass, or a poster that found the queue
// full (enqueue). Where loops wait, it puts the role down after
// inlineTurnsMax turns for the loop to take up (post wakes it).
func (h *Host) runQueued() {
	if !h.takeRunnable() {
		return
	}
	h.runTurnsOn(inlineTurnsMax, h.loopsWait)
}

// enqueue queues q, an event carrying q.requests client requests (0: not a
// client's), and with run runs the node if nobody does. Without run, the
// caller must call runQueued later.
func (h *Host) enqueue(q queued, run bool) bool {
	requests := q.requests
	h.qmu.Lock()
	for {
		if h.closed || (requests > 0 && h.stopAsked.Load()) {
			h.qmu.Unlock()
			return false
		}
		if len(h.queue) < h.cfg.EventQueueMax {
			break
		}
		if h.roomMade == nil {
			h.roomMade = make(chan struct{})
		}
		made := h.roomMade
		h.qmu.Unlock()
		if !run {
			// The queue is full, maybe of this caller's own deferred
			// events that nobody runs yet: run them before waiting.
			h.runQueued()
		}
		select {
		case <-made:
		case <-h.loopDone:
			return false
		}
		h.qmu.Lock()
	}
	q.requests = max(requests, 1)
	h.queue = append(h.queue, q)
	if h.taken || !run {
		h.qmu.Unlock()
		if h.stopAsked.Load() {
			h.signalLoop() // finish may be waiting for this
		}
		return true
	}
	h.taken = true
	h.qmu.Unlock()
	h.runTurns(inlineTurnsMax)
	return true
}

// runTurns runs turns while there is work, holding the role, which the
// caller has taken. After turnsMax turns it hands the role to the loop
// goroutine (the loop itself included, which then takes it back unless it
// is stopping). It reports false if a Flush failed: the node has stopped,
// and the role stays taken so that nobody runs it again.
func (h *Host) runTurns(turnsMax int) bool { return h.runTurnsOn(turnsMax, false) }

// runTurnsOn is runTurns for a caller that, with keep, comes back for the
// role by itself: a waiting event loop (Host.loopsWait), whose next pass
// reads its sockets once and runs the node again (kicksPending keeps it
// from sleeping while events wait). It puts the role down after turnsMax
// turns instead of handing it to Run's goroutine, which would have cost a
// wake-up and run the next turn's inline fsync off the loop: on a
// cluster's leader, 6% of the samples were turns on that goroutine.
func (h *Host) runTurnsOn(turnsMax int, keep bool) bool {
	for turns := 0; ; turns++ {
		h.qmu.Lock()
		idle := len(h.queue) == 0 && len(h.local) == 0
		switch {
		case h.failed != nil:
			h.qmu.Unlock()
			return false
		case !idle && turns >= turnsMax && keep && !h.stopAsked.Load():
			h.taken = false
			h.qmu.Unlock()
			return true
		case h.stopAsked.Load() || (!idle && turns >= turnsMax):
			h.handed = true
			h.qmu.Unlock()
			h.signalLoop()
			return true
		case idle:
			h.taken = false
			h.qmu.Unlock()
			return true
		}
		h.qmu.Unlock()
		if err := h.turn(); err != nil {
			h.qmu.Lock()
			h.failed = err
			h.qmu.Unlock()
			h.signalLoop()
			return false
		}
	}
}

func (h *Host) signalLoop() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// turn runs what the node queued for itself, then queued events up to
// EventsPerTurnMax requests (a batch of one connection's requests is never
// split, so a turn may take one batch past the limit only when it is the
// turn's first event), then Flush: one fsync for the whole turn. Then each
// connection that got replies sends them with one write.
func (h *Host) turn() error {
	var start time.Duration
	if h.metrics != nil {
		start = monoNow()
	}
	n := len(h.local)
	h.gather.beginTurn()
	h.runLocal()
	h.gather.endRelease()
	for {
		h.qmu.Lock()
		k, w := 0, 0
		for k < len(h.queue) && (n+w == 0 || n+w+h.queue[k].requests <= h.cfg.EventsPerTurnMax) {
			w += h.queue[k].requests
			k++
		}
		if k == 0 {
			h.qmu.Unlock()
			break
		}
		evs := append(h.turnEvents[:0], h.queue[:k]...)
		h.queue = dropFront(h.queue, k)
		if h.roomMade != nil {
			close(h.roomMade)
			h.roomMade = nil
		}
		h.qmu.Unlock()
		for i := range evs {
			evs[i].run()
		}
		clear(evs)
		h.turnEvents = evs[:0]
		n += w
	}
	err := h.node.Flush()
	h.flushReplies()
	if h.metrics != nil {
		h.reportTurn()
		h.metrics.Turn(monoNow()-start, n)
	}
	return err
}

// dropFront removes the first k elements of the queue s. A short rest moves
// to the front, so that a queue that keeps draining reuses its array:
// sliced off, the front stays behind and append allocates again once the
// array's end is reached (0.7% of the samples at GET c50, this queue and
// conn.queue). A long rest is sliced off, since moving it costs more.
func dropFront[T any](s []T, k int) []T {
	rest := len(s) - k
	if rest > dropFrontMoveMax {
		clear(s[:k])
		return s[k:]
	}
	copy(s, s[k:])
	clear(s[rest:])
	return s[:rest]
}

// dropFrontMoveMax is the longest rest dropFront moves.
const dropFrontMoveMax = 64

// flushReplies sends the replies of the turn, one write per connection
// (where the socket takes it; the connection's writer sends the rest).
func (h *Host) flushReplies() {
	for i, c := range h.dirty {
		c.dirty = false
		c.sendOrWake()
		h.dirty[i] = nil
	}
	h.dirty = h.dirty[:0]
}

// finish takes the role for good and runs the node on until no fsync is in
// flight, so that a graceful shutdown still answers the writes it already
// made durable. Requests that are already queued are served too; new ones
// are refused (postRequest), so this ends.
func (h *Host) finish() error {
	// A cancelled ctx reaches here before its AfterFunc may have run.
	h.Shutdown()
	h.qmu.Lock()
	for h.taken && !h.handed && h.failed == nil {
		// Another goroutine is running the node; it hands the role over
		// at the end of its turn, since stopAsked is set.
		h.qmu.Unlock()
		<-h.wake
		h.qmu.Lock()
	}
	h.taken, h.handed = true, false
	err := h.failed
	h.qmu.Unlock()
	if err != nil {
		return fmt.Errorf("node stopped: %w", err)
	}
	for {
		h.qmu.Lock()
		idle := len(h.queue) == 0
		h.qmu.Unlock()
		if idle && len(h.local) == 0 {
			if h.syncsInFlight.Load() == 0 {
				return nil
			}
			<-h.wake // a finished fsync posts its outcome
			continue
		}
		if err := h.turn(); err != nil {
			return fmt.Errorf("node stopped: %w", err)
		}
	}
}

// runLocal runs the events the node's runner queued for itself.
func (h *Host) runLocal() {
	evs := h.local
	h.local = nil
	for _, ev := range evs {
		ev()
	}
}

// accept registers connections until the listener closes.
func (h *Host) accept(ln net.Listener) {
	defer h.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-h.loopDone:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry
			// rather than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			h.logf("accept failed (retrying in %v): %v", backoff, err)
			select {
			case <-time.After(backoff):
			case <-h.loopDone:
				return
			}
			continue
		}
		backoff = 0
		var pipe *tlsPipe
		if h.cfg.TLS != nil {
			// Its handshake runs on a goroutine of its own
			// (handshakeForLoop), on the connection's reader
			// (conn.handshake) or on reject's goroutine, not here.
			if len(h.loops) > 0 {
				pipe = newTLSPipe(nc)
				nc = pipe
			}
			tc := tls.Server(nc, h.cfg.TLS)
			if pipe != nil {
				pipe.tc = tc
			}
			nc = tc
		}
		h.mu.Lock()
		switch {
		case h.closing:
			h.mu.Unlock()
			nc.Close()
		case len(h.conns) >= h.cfg.ConnsMax:
			h.connsRefused.Add(1)
			if h.metrics != nil {
				h.metrics.ConnRefused()
			}
			if h.rejects.Add(1) > rejectsMax {
				h.rejects.Add(-1)
				h.mu.Unlock()
				h.logRefusal(nc)
				refuseNow(nc, h.cfg.ConnsMax)
				continue
			}
			h.wg.Add(1)
			h.mu.Unlock()
			h.logRefusal(nc)
			go h.reject(nc)
		case pipe != nil:
			// An event loop serves it once its handshake is done.
			c := newConn(h, nc)
			c.tls = pipe
			c.ls.fd = -1
			h.connsTaken.Add(1)
			h.conns[c] = struct{}{}
			h.wg.Add(1)
			h.mu.Unlock()
			go h.handshakeForLoop(c)
			if h.metrics != nil {
				h.metrics.Conn(1)
			}
		default:
			// An event loop serves it if there are loops and it is a
			// socket; else a reader and a writer goroutine.
			c, err := h.loopConn(nc)
			if err != nil {
				h.mu.Unlock()
				h.logf("cannot serve a connection from %v: %v", nc.RemoteAddr(), err)
				nc.Close()
				continue
			}
			// Counted before mu is let go: a request on the connection
			// may ask INFO before this goroutine runs again (a CI run
			// saw the count lag).
			h.connsTaken.Add(1)
			if c != nil {
				h.conns[c] = struct{}{}
				// Under mu: closeConns, which kicks every connection
				// to close, must find it with its loop.
				c.lp.adoptConn(c)
				h.mu.Unlock()
			} else {
				c = newConn(h, nc)
				h.conns[c] = struct{}{}
				h.wg.Add(2)
				h.mu.Unlock()
				go c.read()
				go c.write()
			}
			if h.metrics != nil {
				h.metrics.Conn(1)
			}
		}
	}
}

// rejectWriteTimeout bounds the one line a rejected connection gets; a fresh
// socket's send buffer takes it at once unless something is badly wrong.
// Rejecting runs on its own goroutine, so a slow one never stalls accept.
const rejectWriteTimeout = time.Second

// rejectSniffTimeout bounds how long a refused connection's first bytes are
// waited for, to tell a RESP client (which gets Redis's own refusal) from a
// JSON one. Clients that send at once (redis-benchmark, a client library's
// first command) are told apart; one that waits for the server to speak
// first gets the JSON line after this long.
const rejectSniffTimeout = 200 * time.Millisecond

// rejectSniffBytes is as much of a refused connection's first bytes as is
// read to tell its protocol: the first word of an inline command.
const rejectSniffBytes = 64

// respTooManyClients is Redis's refusal at maxclients, word for word, so
// that RESP clients that know it (go-redis, redis-benchmark) treat it so.
const respTooManyClients = "-ERR max number of clients reached\r\n"

// rejectsMax bounds the refusals (reject) under way at once, each a
// goroutine and a descriptor for up to rejectSniffTimeout and
// lingerTimeout: past it, a refused connection is answered and closed at
// once (refuseNow), so that a flood of connections past --max-conns holds
// no more than this many descriptors more. Unbounded, 3,000 connections
// opened in half a second held 3,000, and a node with a descriptor limit
// of 300 could not create its next log segment (found by review).
const rejectsMax = 64

// refuseNow refuses nc on the accept goroutine, without waiting: its
// line answers what the client has sent so far, if anything (RESP or
// JSON), and is written once, as the socket takes it (a new socket's send
// buffer takes it whole). A TLS connection, whose handshake would wait, is
// closed without a word. (A write deadline would not do: a deadline that
// has passed fails the write untried, and on a loaded machine a short one
// passed before the write ran.)
func refuseNow(nc net.Conn, connsMax int) {
	defer nc.Close()
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return // a TLS connection
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var first [rejectSniffBytes]byte
	n := 0
	raw.Read(func(fd uintptr) bool {
		if m, err := syscall.Read(int(fd), first[:]); err == nil && m > 0 {
			n = m
		}
		return true // one read of what is there, never a wait for more
	})
	line := refusalLine(first[:n], connsMax)
	raw.Write(func(fd uintptr) bool {
		syscall.Write(int(fd), line)
		return true
	})
}

// refusalLine is the too_many_connections line for a client whose first
// bytes were first: Redis's for a RESP client, else JSON's.
func refusalLine(first []byte, connsMax int) []byte {
	if looksRESP(first) {
		return []byte(respTooManyClients)
	}
	resp := core.ErrorResponse(core.CodeTooManyConns, "server has %d connections open, its limit; try again later", connsMax)
	return core.AppendResponse(nil, &resp)
}

// logRefusal logs a connection refused past ConnsMax, a line every
// logIntervalMin at most, with a count of those held back.
// logFlushLoop writes the counts of the rate-limited lines held back
// whose interval has ended (logLimiter.flushDue), until the loop is done:
// a flood of refused connections or failed handshakes that stopped left
// its count unsaid until the next such line (Peers' logFlushLoop does the
// same for the peers' lines).
func (h *Host) logFlushLoop() {
	defer h.wg.Done()
	tick := time.NewTicker(min(h.tlsLog.interval(), h.refuseLog.interval()) / 10)
	defer tick.Stop()
	for {
		select {
		case <-h.loopDone:
			return
		case now := <-tick.C:
			h.tlsLog.flushDue(now)
			h.refuseLog.flushDue(now)
		}
	}
}

func (h *Host) logRefusal(nc net.Conn) {
	h.refuseLog.logf("refuse", "refusing connection from %v: %d connections already open", nc.RemoteAddr(), h.cfg.ConnsMax)
}

func (h *Host) reject(nc net.Conn) {
	defer h.wg.Done()
	defer h.rejects.Add(-1)
	if tc, ok := nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(rejectWriteTimeout))
		if err := tc.Handshake(); err != nil {
			var rh tls.RecordHeaderError
			if errors.As(err, &rh) && rh.Conn != nil {
				refusePlaintext(rh.Conn, rh.RecordHeader[:])
			} else {
				tc.NetConn().Close()
			}
			return
		}
	}
	var first [rejectSniffBytes]byte
	nc.SetReadDeadline(time.Now().Add(rejectSniffTimeout))
	n, _ := nc.Read(first[:])
	refusal := refusalLine(first[:n], h.cfg.ConnsMax)
	nc.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
	if _, err := nc.Write(refusal); err != nil {
		nc.Close()
		return
	}
	lingerClose(nc)
}

// looksRESP tells a RESP client from the first bytes it sent, as sniff
// does: an array, or an inline line whose first word names a command. A
// line cut short by the read still shows its first word.
func looksRESP(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if b[0] == '*' {
		return true
	}
	word := bytes.TrimLeft(b, " \t")
	if j := bytes.IndexAny(word, " \t\r\n"); j >= 0 {
		word = word[:j]
	} else if len(b) == rejectSniffBytes {
		return false // no word end seen: too long for a command name
	}
	return isRESPCommand(word)
}

func (h *Host) forget(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	if h.metrics != nil {
		h.metrics.Conn(-1)
	}
}

// closeConns tells every connection that no more replies will come.
func (h *Host) closeConns() {
	h.mu.Lock()
	h.closing = true
	for c := range h.conns {
		c.shutdown()
	}
	h.mu.Unlock()
	h.stopLoops()
}

// network is the node's way to its peers: the configured one, or none.
func (h *Host) network() core.Network {
	if h.cfg.Network != nil {
		return h.cfg.Network
	}
	return nullNetwork{}
}

// Deliver hands the node a message from a peer, in a later turn. It is
// Peers' deliver func: it waits while the node's queue is full, which holds
// up that peer's connection only, and drops the message once the host has
// stopped.
func (h *Host) Deliver(from core.NodeID, msg []byte) {
	h.post(func() { h.node.HandleMessage(from, msg) })
}

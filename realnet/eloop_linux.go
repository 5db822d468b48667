//go:build linux

package realnet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"dkv/internal/sockfd"
)

// EventLoopsSupported says whether HostConfig.EventLoops may be above 0
// here: the event loops are built on epoll.
const EventLoopsSupported = true

// defaultEventLoops is one loop, which waits for its sockets in epoll_wait
// on a processor of its own (see Host.loopsWait) where the runtime has two
// or more, as Redis's one thread does.
func defaultEventLoops() int { return 1 }

const (
	// loopEventsMax bounds the readiness events one epoll_wait returns.
	loopEventsMax = 256
)

// eloop is one event loop: a goroutine that waits on an epoll instance for
// its connections' sockets and reads, frames, decodes and posts their
// requests, and sends what the node's runner could not send at once. A
// request read here often runs the node on this goroutine too (Host.post),
// as a connection's reader goroutine does. Compared with a reader and a
// writer goroutine per connection, one wait here returns every socket that
// became readable: under load that is one wake-up for many requests
// instead of one per connection (see docs/ARCHITECTURE.md for the
// measurements).
//
// Nothing here blocks but epoll_wait and a full node queue (Host.enqueue),
// which pushes back on every connection of the loop at once, as readers
// block on it one by one. The limits are the goroutine host's, kept by the
// same framing code (conn.go); the differences are in how they wait: the
// in-flight limit pauses a connection (its socket is left unread) instead of
// blocking its reader, and the timeouts are deadlines that the loop sweeps
// instead of socket deadlines.
type eloop struct {
	h    *Host
	epfd int
	evfd int // an eventfd: a kick's wake-up

	mu    sync.Mutex
	kicks []*conn // connections to look at: replies to send, room made, stop
	adopt []*conn // connections accepted for this loop, not yet registered
	// adoptFrames and closeFrames are peer connections handed to the
	// loop (Host.adoptFrames) and ones asked to close (frameConn.Close);
	// exited: the loop is gone, and takes no more.
	adoptFrames, closeFrames []*frameConn
	exited                   bool
	stop                     bool // the host is stopping: exit once every connection closed
	// sleeping is set while the loop is in (or about to enter) epoll_wait,
	// notified once a kick wrote to evfd: a kick wakes the loop only when
	// it sleeps, and with one write however many kicks come.
	sleeping, notified atomic.Bool
	// yields counts the times the loop let its processor's other
	// goroutines run after loopBusyPassesMax busy passes (for the tests).
	yields atomic.Int64
	// awaited counts this loop's connections that a sync's replies just
	// answered and that have not sent again (gathering).
	awaited atomic.Int64
	// passWrites: the requests read in this pass include a write;
	// passRequests counts them (the loop goroutine's own; gathering.sent
	// sets them).
	passWrites   bool
	passRequests int

	// The loop goroutine's own.
	// conns holds the connections by descriptor, nil where there is
	// none (descriptors are small: the kernel hands out the lowest free
	// one); a map's lookup was 0.6% of the samples at GET c50. live
	// counts them.
	conns        []*conn
	live         int
	frames       map[int]*frameConn
	events       []unix.EpollEvent
	nextDeadline time.Time // no connection's deadline is earlier; zero: none
	now          time.Time // read once a pass (pollWait), after its wait
	runnable     [1]metrics.Sample
	work         []*conn
	wbuf         []byte
	tlsBuf       []byte // what a TLS connection's socket read takes (readTLS)
}

func newEloop(h *Host) (*eloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &eloop{
		h:        h,
		epfd:     epfd,
		evfd:     evfd,
		frames:   make(map[int]*frameConn),
		events:   make([]unix.EpollEvent, loopEventsMax),
		runnable: [1]metrics.Sample{{Name: runnableMetric}},
	}, nil
}

// startLoops starts the host's event loops (none if EventLoops is 0).
func (h *Host) startLoops() error {
	for range h.cfg.EventLoops {
		lp, err := newEloop(h)
		if err != nil {
			h.stopLoops()
			return err
		}
		h.loops = append(h.loops, lp)
		h.wg.Add(1)
		go lp.run()
	}
	if h.loopsWait {
		h.postLoop.Store(h.loops[0])
	}
	return nil
}

// stopLoops tells every loop to exit once its connections have closed
// (closeConns tells those to close).
func (h *Host) stopLoops() {
	for _, lp := range h.loops {
		lp.mu.Lock()
		lp.stop = true
		lp.mu.Unlock()
		lp.notify()
	}
}

// loopConn makes a loop connection of nc, on the next loop in turn: the
// socket is duplicated and nc closed, which takes it out of the Go
// runtime's poller, so that only the loop waits on it. It returns nil
// where nc has no descriptor (it is then served by goroutines).
func (h *Host) loopConn(nc net.Conn) (*conn, error) {
	if len(h.loops) == 0 {
		return nil, nil
	}
	fd, err := sockfd.DupNonblock(nc)
	if err != nil || fd < 0 {
		return nil, err
	}
	nc.Close()
	c := newConn(h, nc)
	c.ls.fd = fd
	c.lp = h.loops[h.nextLoop%uint64(len(h.loops))]
	h.nextLoop++
	return c, nil
}

// handshakeForLoop runs the server's side of a TLS connection's handshake
// (c.tls, which the accept loop made) on a goroutine of its own, then hands
// the socket to the next loop in turn and the pipe to the loop's reads and
// writes. A handshake takes round trips, which a loop must not wait for.
// Until the loop takes it, c has no loop and no descriptor: a stop
// (closeConns) finds it with c.lp nil, and c.shutdown ends the handshake.
func (h *Host) handshakeForLoop(c *conn) {
	defer h.wg.Done()
	tc := c.nc.(*tls.Conn)
	p := c.tls
	if err := c.handshake(tc); err != nil {
		p.Close() // (refusePlaintext closed a plain-text client's already)
		h.forget(c)
		return
	}
	fd, err := sockfd.DupNonblock(p.Conn)
	p.Conn.Close()
	if err != nil {
		h.logf("cannot serve a connection from %v: %v", p.RemoteAddr(), err)
		h.forget(c)
		return
	}
	if testHookHandshaken != nil {
		testHookHandshaken()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Under mu: c.shutdown, which closeConns calls under it, sets the
	// pipe's deadlines, which look at whether it is detached.
	p.detach()
	if h.closing {
		unix.Close(fd)
		delete(h.conns, c)
		if h.metrics != nil {
			h.metrics.Conn(-1)
		}
		return
	}
	c.ls.fd = fd
	c.lp = h.loops[h.nextLoop%uint64(len(h.loops))]
	h.nextLoop++
	// Under mu, as accept adopts: closeConns must find it with its loop.
	c.lp.adoptConn(c)
}

// testHookHandshaken, when set by a test, runs in handshakeForLoop once
// the handshake is done, just before the loop takes the connection.
var testHookHandshaken func()

// adoptConn hands c to its loop, which registers it.
func (lp *eloop) adoptConn(c *conn) {
	lp.mu.Lock()
	lp.adopt = append(lp.adopt, c)
	lp.mu.Unlock()
	lp.notify()
}

// kick asks the loop to look at c: replies are ready that the node's
// runner could not send, room was made under the in-flight limit, the
// reader stopped, or the host is stopping. Any goroutine may kick.
func (lp *eloop) kick(c *conn) {
	lp.mu.Lock()
	if !c.ls.kicked {
		c.ls.kicked = true
		lp.kicks = append(lp.kicks, c)
	}
	lp.mu.Unlock()
	if lp.sleeping.Load() {
		lp.notify()
	}
}

// notify wakes the loop from epoll_wait, with one write however many
// notify before it wakes.
func (lp *eloop) notify() {
	if !lp.notified.CompareAndSwap(false, true) {
		return
	}
	var one = [8]byte{1}
	for {
		_, err := writeNonblock(lp.evfd, one[:])
		if err != unix.EINTR {
			// EAGAIN: the counter is full, so the loop will wake anyway.
			return
		}
	}
}

// run is the loop goroutine. It never blocks in epoll_wait: it parks in the
// Go runtime's poller on the epoll descriptor, which is readable while the
// descriptor has events, and every epoll_wait it makes returns at once. A
// goroutine blocked in a system call keeps its processor (P) until the
// runtime's sysmon thread takes it back, which keeps sysmon waking every
// 20 µs and starts another thread for the P; parked, the wait frees the P at
// once, like any goroutine's. Measured against a blocking epoll_wait (SET at
// 50 clients, 3 interleaved rounds): 0.58 against 0.75 context switches per
// op, at the same CPU per op within the noise.
func (lp *eloop) run() {
	defer lp.dropFrames()
	if lp.h.loopsWait {
		lp.runWaiting()
		return
	}
	defer lp.h.wg.Done()
	defer unix.Close(lp.evfd)
	// Non-blocking, for os.NewFile to register it with the runtime's
	// poller (an epoll descriptor is readable while it has events).
	if err := unix.SetNonblock(lp.epfd, true); err != nil {
		panic(fmt.Sprintf("realnet: epoll descriptor: %v", err))
	}
	f := os.NewFile(uintptr(lp.epfd), "epoll")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		panic(fmt.Sprintf("realnet: epoll descriptor: %v", err))
	}
	var armed time.Time // the deadline set on f
	busy := 0           // passes in a row that found work
	wait := func(uintptr) bool {
		for {
			lp.sleeping.Store(false)
			if lp.exiting() || !armed.Equal(lp.nextDeadline) {
				return true
			}
			if !lp.poll() {
				if busy++; busy >= loopBusyPassesMax {
					return true // yield below
				}
				continue
			}
			busy = 0
			// Nothing was ready: park in the runtime's poller, unless
			// a kick came meanwhile. sleeping before the look at the
			// lists: a kick after the look sees it and writes evfd.
			lp.sleeping.Store(true)
			if !lp.kicksPending() {
				return false
			}
		}
	}
	for {
		if !armed.Equal(lp.nextDeadline) {
			armed = lp.nextDeadline
			f.SetReadDeadline(armed)
		}
		err := rc.Read(wait)
		lp.sleeping.Store(false)
		if lp.exiting() {
			return
		}
		if busy >= loopBusyPassesMax {
			busy = 0
			lp.yields.Add(1)
			runtime.Gosched()
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			panic(fmt.Sprintf("realnet: waiting on epoll: %v", err))
		}
		if !lp.nextDeadline.IsZero() && !time.Now().Before(lp.nextDeadline) {
			lp.sweep()
			lp.h.runQueued() // what the sweep posted, if anything
		}
	}
}

// runWaiting is run for a loop that may hold its processor while it waits
// (Host.loopsWait): it blocks in epoll_wait itself, a raw system call, so
// the runtime neither hands its processor to another thread nor parks and
// wakes it through the poller, and its fsyncs run inline (syncFile.
// SyncAsync): while one runs, the requests that arrive gather in the
// sockets, and the next pass takes them all in one turn. That is Redis's
// design, and on the 2-core VM it cost 13.3 µs of server CPU per durable
// SET at 50 clients against 21.5 for parked loops with the fsync on
// another goroutine, at 1.5 times the throughput: every wake-up saved is a
// context switch, which costs more here than the work of a request
// (docs/PERFORMANCE.md, twelfth session).
func (lp *eloop) runWaiting() {
	defer lp.h.wg.Done()
	defer unix.Close(lp.evfd)
	defer unix.Close(lp.epfd)
	timeoutMs := 0 // the next wait's; 0 after a pass that found work
	busy := 0
	var yielded time.Time // the last runtime.Gosched of a busy stretch
	for !lp.exiting() {
		if timeoutMs != 0 {
			// sleeping before the look at the lists: a kick after the
			// look sees it and writes evfd, which ends the wait.
			lp.sleeping.Store(true)
			if lp.kicksPending() {
				timeoutMs = 0
			}
		}
		// pollWait sweeps the deadlines that passed, and what the sweep
		// posts makes kicksPending true for the next pass.
		idle := lp.pollWait(timeoutMs)
		lp.sleeping.Store(false)
		switch {
		case !idle:
			timeoutMs = 0
			if busy++; busy < loopBusyPassesMax {
				break
			}
			if now := lp.now; now.Sub(yielded) >= loopYieldGap {
				busy = 0
				yielded = now
				if lp.othersRunnable() {
					lp.yields.Add(1)
					runtime.Gosched()
				}
			}
		case timeoutMs != 0:
			// A wait that timed out. Yielding shows the runtime that
			// the goroutine moves on, so its sysmon does not preempt
			// it with a signal for having run 10 ms.
			runtime.Gosched()
			fallthrough
		default:
			busy = 0
			timeoutMs = lp.waitMs()
		}
	}
}

// loopWaitMsMax bounds one epoll_wait of a waiting loop, below the 10 ms
// after which the runtime preempts a goroutine that has not yielded (with
// a signal, which would end the wait about as often). An idle server's
// loop so wakes about 110 times a second, for a few µs each.
const loopWaitMsMax = 9

// waitMs is how long the next epoll_wait may block: until the earliest
// deadline, rounded up, and at most loopWaitMsMax.
func (lp *eloop) waitMs() int {
	if lp.nextDeadline.IsZero() {
		return loopWaitMsMax
	}
	left := time.Until(lp.nextDeadline)
	return max(1, min(loopWaitMsMax, int((left+time.Millisecond-1)/time.Millisecond)))
}

// loopBusyPassesMax: a loop that has found work in this many passes in a
// row lets the other goroutines of its processor run (runtime.Gosched)
// before it goes on. Under a steady load a loop never parks, and with its
// system calls raw (nonblock_linux.go) nothing takes its processor from it
// until the runtime preempts it, 10 ms or more later: what waits meanwhile
// (the other loop, once readied on this processor, a finished fsync's
// goroutine, the collector's workers) waited that long, and GET at 50
// clients had a p99.9 of 46–58 ms against 16 ms with the wrapped calls.
// Yielding every 64 busy passes brought it to 17–22 ms, every 16 to 7.5
// ms and every 4 to 6.7 ms (Redis: 4.7 ms), at the same CPU per op; at
// 16 pipelined GETs p99 fell from 7.5–9 to 3.5–4 ms.
const loopBusyPassesMax = 4

// loopYieldGap: a waiting loop (runWaiting) yields after loopBusyPassesMax
// busy passes only if it has not yielded for this long. Each Gosched
// wakes a thread for the idle processor (runtime.wakep), which finds
// nothing to run and sleeps again: two futex calls and a context switch.
// Every 4 passes, at 50 clients of GETs that were 6% of the server's
// samples, and 22,000 futex calls per 200,000 GETs; with a 1–2 ms gap,
// 4,000, at 2.6% less CPU per GET and the same or lower p99.9 (3 rounds
// of cmd/bench compare, both builds in the same run). A goroutine stuck
// behind the loop on its processor still waits about a millisecond at
// most; the runtime readies most on the other processor anyway.
const loopYieldGap = time.Millisecond

// othersRunnable reports whether goroutines wait for a processor: the
// runtime's count, which it takes under its scheduler's lock, about a µs.
// A busy loop yields only then: a Gosched with nothing else to run still
// woke a thread for the idle processor, which found nothing and slept
// again, 2.6% of the samples at GET c50 with a yield a millisecond.
func (lp *eloop) othersRunnable() bool {
	metrics.Read(lp.runnable[:])
	v := lp.runnable[0].Value
	return v.Kind() != metrics.KindUint64 || v.Uint64() > 0
}

// runnableMetric counts the goroutines that wait for a processor.
const runnableMetric = "/sched/goroutines/runnable:goroutines"

// testHookLingerSocketFull, when set by a test, is asked before linger
// sends TLS's closing alert; true leaves the alert unsent, as a full
// socket would.
var testHookLingerSocketFull func() bool

// testHookEvfdDrained, when set by a test, runs in poll between draining
// evfd and clearing notified, where a concurrent notify once got lost.
var testHookEvfdDrained func(*eloop)

// exiting reports whether the loop is done: the host stops and every
// connection has closed.
func (lp *eloop) exiting() bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.stop && len(lp.kicks) == 0 && len(lp.adopt) == 0 && lp.live == 0
}

// kicksPending reports whether the loop has kicks or new connections to
// look at, or, where loops wait (Host.post hands them events), events to
// run.
func (lp *eloop) kicksPending() bool {
	lp.mu.Lock()
	pending := len(lp.kicks) > 0 || len(lp.adopt) > 0 || len(lp.adoptFrames) > 0 || len(lp.closeFrames) > 0
	lp.mu.Unlock()
	return pending || (lp.h.loopsWait && lp.h.runnable())
}

// wake wakes the loop if it sleeps, to run what Host.post queued. (A post
// that comes while the loop is busy is run by its pass's runQueued, or
// seen by kicksPending before it sleeps.)
func (lp *eloop) wake() {
	if lp.sleeping.Load() {
		lp.notify()
	}
}

// poll takes what is ready without waiting, handles it and the kicks, runs
// the node on the requests that came, and acts on the deadlines that
// passed. It reports whether it found nothing to do.
func (lp *eloop) poll() (idle bool) { return lp.pollWait(0) }

// pollWait is poll with epoll_wait's timeout: it may block up to timeoutMs.
func (lp *eloop) pollWait(timeoutMs int) (idle bool) {
	n, err := epollWait(lp.epfd, lp.events, timeoutMs)
	lp.sleeping.Store(false)
	lp.now = time.Now()
	if err != nil && err != unix.EINTR {
		// Only a bug makes epoll_wait fail (EBADF, EFAULT, EINVAL).
		panic(fmt.Sprintf("realnet: epoll_wait: %v", err))
	}
	lp.passWrites, lp.passRequests = false, 0
	idle = lp.handle(n)
	if lp.runKicks() {
		idle = false
	}
	if !idle {
		lp.gatherStragglers()
	}
	// The requests of every connection that was ready, in one turn.
	lp.h.runQueued()
	// The pass's clock: a deadline that passed during the pass is seen
	// by the next one, which waits for at most a millisecond (waitMs).
	if !lp.nextDeadline.IsZero() && !lp.now.Before(lp.nextDeadline) {
		lp.sweep()
	}
	return idle
}

// handle handles the first n events of lp.events, which the last
// epoll_wait returned. It reports whether none was a connection's.
func (lp *eloop) handle(n int) (idle bool) {
	idle = true
	for i := range max(n, 0) {
		ev := lp.events[i]
		fd := int(ev.Fd)
		if fd == lp.evfd {
			// Drain evfd before notify may write it again: cleared the
			// other way round, a notify between the two wrote evfd, the
			// read took its write, and notified stayed set with nothing
			// left to wake the loop, which then slept through every later
			// notify (a CI run had half of 100 new connections, those of
			// one loop, never served). A notify now either finds
			// notified set and leaves its kick to runKicks below, or
			// writes evfd for the next poll.
			var b [8]byte
			readNonblock(lp.evfd, b[:])
			if testHookEvfdDrained != nil {
				testHookEvfdDrained(lp)
			}
			lp.notified.Store(false)
			continue
		}
		if c := lp.connAt(fd); c != nil {
			idle = false
			lp.ready(c, ev.Events)
		} else if fc := lp.frames[fd]; fc != nil {
			idle = false
			lp.readFrames(fc)
		}
	}
	return idle
}

// gatherStragglers waits, before the pass runs the node, for the clients
// that the last sync's replies answered to send again, so that their
// requests join the batch the turn commits (gathering says why). It waits
// only where the loop fsyncs inline, with requests in hand that nobody
// runs yet, a write among them (reads alone commit nothing) and none of
// the node's own events pending; and until every awaited client of the
// loop has sent, the gathering's deadline, or requests come too slowly to
// be worth the wait (worthWaiting).
func (lp *eloop) gatherStragglers() {
	h := lp.h
	if !h.loopsWait || !lp.passWrites || lp.awaited.Load() <= 0 || gatherUnsupported.Load() {
		return
	}
	end := h.gather.deadline(h.cfg.GatherWaitMax)
	if end == 0 || monoNow() >= end || !h.gatherable() {
		return
	}
	syncAvg := time.Duration(h.gather.syncAvg.Load())
	probe := max(syncAvg/gatherProbeShare, gatherProbeMin)
	start, inHand := monoNow(), lp.passRequests
	outcome := lp.gatherWait(start, end, inHand, probe, syncAvg)
	if h.metrics != nil && outcome != "" {
		h.metrics.Gathered(outcome, monoNow()-start)
	}
}

// gatherWait is gatherStragglers' wait, from start to end at most, and
// how it ended ("" where epoll_pwait2 is refused).
func (lp *eloop) gatherWait(start, end time.Duration, inHand int, probe, syncAvg time.Duration) string {
	for lp.awaited.Load() > 0 {
		now := monoNow()
		left := end - now
		if left <= 0 {
			return GatherDeadline
		}
		if !worthWaiting(lp.passRequests-inHand, lp.passRequests, now-start, probe, syncAvg) {
			return GatherTooSlow
		}
		n, err := epollWaitFor(lp.epfd, lp.events, min(left, probe))
		switch {
		case err == unix.ENOSYS:
			gatherUnsupported.Store(true)
			return ""
		case err != nil && err != unix.EINTR:
			panic(fmt.Sprintf("realnet: epoll_pwait2: %v", err))
		}
		lp.handle(n)
		lp.runKicks()
	}
	return GatherAllSent
}

// gatherUnsupported is set once epoll_pwait2 was refused (before Linux
// 5.11): no loop waits for stragglers then.
var gatherUnsupported atomic.Bool

// connAt is the connection of descriptor fd, nil if none.
func (lp *eloop) connAt(fd int) *conn {
	if uint(fd) < uint(len(lp.conns)) {
		return lp.conns[fd]
	}
	return nil
}

// ready handles one readiness event of c's socket.
func (lp *eloop) ready(c *conn, events uint32) {
	if events&unix.EPOLLOUT != 0 {
		lp.flush(c)
	}
	if c.ls.closed || events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	switch {
	case c.ls.lingering:
		lp.drain(c)
	case c.ls.reading && !c.ls.paused:
		lp.read(c)
	case events&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
		// Not reading, and the socket failed or is shut both ways:
		// nothing can reach the client any more. (Level-triggered, this
		// would be reported again at every wait.)
		lp.close(c)
	}
}

// runKicks registers the adopted connections and looks at the kicked ones.
// It reports whether there were any.
func (lp *eloop) runKicks() bool {
	lp.mu.Lock()
	adopt := lp.adopt
	lp.adopt = nil
	adoptFrames, closeFrames := lp.adoptFrames, lp.closeFrames
	lp.adoptFrames, lp.closeFrames = nil, nil
	kicks := append(lp.work[:0], lp.kicks...)
	clear(lp.kicks)
	lp.kicks = lp.kicks[:0]
	for _, c := range kicks {
		c.ls.kicked = false
	}
	lp.mu.Unlock()
	for _, c := range adopt {
		lp.register(c)
	}
	for _, fc := range adoptFrames {
		lp.registerFrames(fc)
	}
	for _, fc := range closeFrames {
		lp.endFrames(fc, net.ErrClosed)
	}
	for _, c := range kicks {
		lp.kicked(c)
	}
	clear(kicks)
	lp.work = kicks[:0]
	return len(adopt) > 0 || len(kicks) > 0 || len(adoptFrames) > 0 || len(closeFrames) > 0
}

// register starts serving c.
func (lp *eloop) register(c *conn) {
	fd := c.ls.fd
	if old := lp.connAt(fd); old != nil {
		// The number was closed and reused; the old entry must be gone.
		panic(fmt.Sprintf("realnet: descriptor %d registered twice (closed: %v)", fd, old.ls.closed))
	}
	if fd >= len(lp.conns) {
		lp.conns = append(lp.conns, make([]*conn, fd+1-len(lp.conns))...)
	}
	lp.conns[fd] = c
	lp.live++
	c.rd.buf = make([]byte, readBufBytes)
	c.rd.idleSince = time.Now()
	c.ls.reading = true
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		lp.h.logf("cannot serve a connection: epoll_ctl: %v", err)
		lp.close(c)
		return
	}
	c.ls.events = unix.EPOLLIN
	lp.setReadDeadline(c)
	if c.tls != nil {
		// The handshake's reads may have taken the client's first
		// records (a TLS 1.3 client sends its request with its Finished).
		c.tls.more = true
		lp.readTLS(c, false)
	}
}

// kicked looks at c after a kick.
func (lp *eloop) kicked(c *conn) {
	if c.ls.closed {
		return
	}
	select {
	case <-c.stop:
		if !c.ls.stopping {
			// The node's loop has exited: nothing more will be
			// answered. What is ready goes out (a write's reply means
			// it was fsync'd, so it is worth a short wait), then the
			// connection closes.
			c.ls.stopping = true
			lp.stopReading(c)
			c.ls.writeDeadline = time.Now().Add(shutdownWriteTimeout)
			lp.deadline(c.ls.writeDeadline)
		}
	default:
	}
	lp.flush(c)
	if c.ls.closed || !c.ls.reading || !c.ls.paused {
		return
	}
	// Room may have been made: frame what waits in the buffer.
	c.ls.paused = false
	if !c.consume(0, time.Now()) {
		lp.readStop(c, c.rd.err)
		return
	}
	lp.afterRead(c)
	if c.tls != nil && c.tls.pending() && c.ls.reading && !c.ls.paused {
		lp.readTLS(c, false) // what TLS holds, which no socket read announces
	}
}

// read reads c's socket once and frames what came. Level-triggered, a
// socket with more to read is reported again by the next wait, which
// costs no read that finds nothing.
func (lp *eloop) read(c *conn) {
	if c.tls != nil {
		lp.readTLS(c, true)
		return
	}
	rd := &c.rd
	space := rd.buf[rd.end:]
	if len(space) == 0 {
		// Framing always leaves room (it compacts or grows the buffer,
		// or pauses, and a paused connection is not read); a read into
		// nothing would look like an end of stream.
		panic("realnet: loop read with a full buffer")
	}
	n, again, err := readSocket(c.ls.fd, space)
	c.reads.Add(1)
	switch {
	case again:
		return
	case err != nil:
		lp.readStop(c, err)
		return
	}
	if !c.consume(n, lp.now) {
		lp.readStop(c, rd.err)
		return
	}
	lp.afterRead(c)
}

// readTLS is read for a TLS connection: the socket's bytes go to TLS
// (c.tls), and what TLS decrypts to the connection's buffer, to be framed
// as any connection's. One socket read may hold many records; they are
// all decrypted and framed here, as far as the connection takes them (a
// pause at the in-flight limit stops it, and kicked goes on). A read of
// the socket is made only once TLS holds nothing that the last one left
// (tlsPipe.pending): level-triggered, epoll reports the socket again while
// it has bytes, but nothing would report what TLS holds.
func (lp *eloop) readTLS(c *conn, fromSocket bool) {
	p := c.tls
	if p.answeredLen() > tlsAnsweredMax {
		// TLS answered the client's records itself (key updates), and
		// the client does not take the answers: read nothing more until
		// it has (flush resumes it), as a reader goroutine would block
		// on the socket. It is paused, so no read deadline runs; the
		// write deadline does.
		p.held, c.ls.paused = true, true
		lp.afterRead(c)
		return
	}
	if fromSocket && !p.pending() {
		if lp.tlsBuf == nil {
			lp.tlsBuf = make([]byte, readBufBytes)
		}
		n, again, err := readSocket(c.ls.fd, lp.tlsBuf)
		c.reads.Add(1)
		switch {
		case again:
			return
		case err != nil:
			p.end = err // TLS is told once it has taken what came before
		default:
			p.feed(lp.tlsBuf[:n])
		}
	}
	defer p.keep()
	for c.ls.reading && !c.ls.paused && !c.ls.closed {
		n, err := lp.decrypt(c)
		if n > 0 && !c.consume(n, lp.now) {
			lp.readStop(c, c.rd.err)
			return
		}
		if err == errTLSDry {
			break
		}
		if err != nil && c.ls.paused {
			// TLS ended the stream with its last bytes (a closing
			// alert after the records), and the in-flight limit left
			// some of them in the buffer: reading ends once they are
			// framed (kicked decrypts again, and decrypt returns it).
			p.ended, p.more = err, true
			break
		}
		if err != nil {
			// The end of the stream, its failure, or a record TLS
			// refused (it wrote its alert into the pipe; readStop's
			// flush sends it).
			lp.readStop(c, err)
			return
		}
		if n == 0 {
			break // (consume always leaves room; never spin)
		}
	}
	if c.tlsOutLeft() {
		lp.flush(c) // TLS answered a record itself (a key update)
	}
	if !c.ls.closed && c.ls.reading {
		lp.afterRead(c)
	}
}

// tlsAnsweredMax bounds what TLS writes by itself as it reads (a key
// update's answer) that may wait for the socket before the loop stops
// reading the connection (readTLS): one socket read's worth may come on
// top of it.
const tlsAnsweredMax = readBufBytes

// decrypt fills c's read buffer from TLS as far as it goes. err is nil if
// the buffer filled (TLS may hold more: p.more), errTLSDry once TLS needs
// bytes from the socket, or why the stream ended.
func (lp *eloop) decrypt(c *conn) (n int, err error) {
	rd, p := &c.rd, c.tls
	if p.ended != nil {
		return 0, p.ended
	}
	space := rd.buf[rd.end:]
	for n < len(space) {
		var m int
		m, err = p.tc.Read(space[n:])
		n += m
		if err != nil {
			break
		}
	}
	p.more = err == nil
	return n, err
}

// readSocket reads a non-blocking socket into b (not empty), again on
// EINTR. again: nothing to read now; err: io.EOF at the end of the
// stream, or the read's failure.
func readSocket(fd int, b []byte) (n int, again bool, err error) {
	for {
		n, err = recvNonblock(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, true, nil
		case err != nil:
			return 0, false, os.NewSyscallError("read", err)
		case n == 0:
			return 0, false, io.EOF
		}
		return n, false, nil
	}
}

// afterRead sets c's read deadline and interest after framing.
func (lp *eloop) afterRead(c *conn) {
	if c.ls.paused {
		c.ls.readDeadline = time.Time{}
	} else {
		lp.setReadDeadline(c)
	}
	lp.setInterest(c)
}

// setReadDeadline is conn.setReadDeadline's rule for a loop connection:
// the line timeout from when the current partial request first waited,
// else the idle timeout from the last data. (No end-of-stream probe: epoll
// reports an end of stream that came with the last data.)
func (lp *eloop) setReadDeadline(c *conn) {
	rd := &c.rd
	if c.partial() {
		if rd.waitingSince.IsZero() {
			rd.waitingSince = time.Now()
		}
		c.ls.readDeadline = rd.waitingSince.Add(lp.h.cfg.LineTimeout)
	} else {
		c.ls.readDeadline = rd.idleSince.Add(lp.h.cfg.IdleTimeout)
	}
	c.ls.readDeadline = c.authDeadline(c.ls.readDeadline)
	lp.deadline(c.ls.readDeadline)
}

// deadline notes that some connection's deadline is at t.
func (lp *eloop) deadline(t time.Time) {
	if lp.nextDeadline.IsZero() || t.Before(lp.nextDeadline) {
		lp.nextDeadline = t
	}
}

// readStop ends reading c with err, answers what that leaves owed
// (conn.readEnded) and sends what is ready; the connection closes once
// every owed reply is out.
func (lp *eloop) readStop(c *conn, err error) {
	if err == nil {
		err = errGoingAway
	}
	c.readEnded(err)
	lp.stopReading(c)
	lp.flush(c)
}

// stopReading marks c's reader as stopped: nothing more will be queued.
func (lp *eloop) stopReading(c *conn) {
	if !c.ls.reading {
		return
	}
	c.ls.reading, c.ls.paused = false, false
	c.ls.readDeadline = time.Time{}
	c.mu.Lock()
	c.readerGone = true
	c.mu.Unlock()
	lp.setInterest(c)
}

// setInterest tells epoll what c waits for.
func (lp *eloop) setInterest(c *conn) {
	if c.ls.closed {
		return
	}
	var want uint32
	if c.ls.lingering || (c.ls.reading && !c.ls.paused) {
		want |= unix.EPOLLIN
	}
	if c.ls.outWanted {
		want |= unix.EPOLLOUT
	}
	if want == c.ls.events {
		return
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(c.ls.fd)}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_MOD, c.ls.fd, &ev); err != nil {
		lp.h.logf("closing a connection: epoll_ctl: %v", err)
		lp.close(c)
		return
	}
	c.ls.events = want
}

// flush sends what c owes that is ready: the bytes the socket did not take
// before, then the filled replies at the head of its queue, as one write.
// What the socket does not take waits for it to be writable (EPOLLOUT),
// for at most WriteTimeout without progress. Once nothing more is owed and
// the reader is gone, the connection closes.
func (lp *eloop) flush(c *conn) {
	c.wmu.Lock()
	if c.ls.fd < 0 {
		c.wmu.Unlock()
		return
	}
	ok, progress, gone := true, false, false
	if len(c.pending) > 0 || c.tlsOutLeft() {
		// (For TLS, what the pipe holds goes first: see conn.sendLoop.)
		sentBefore := c.tlsSent()
		var n int
		n, ok = lp.write(c, c.pending)
		progress = n > 0 || c.tlsSent() != sentBefore
		c.pending = c.pending[:copy(c.pending, c.pending[n:])]
	}
	for ok && len(c.pending) == 0 && !c.tlsOutLeft() {
		// At most sendAheadBytesMax encoded at a time (encodeReady):
		// the rest stays owed until the socket takes this.
		var buf []byte
		var k int
		buf, k, gone = c.encodeReady(lp.wbuf[:0])
		lp.wbuf = keepSendBuf(buf)
		if k == 0 {
			break
		}
		var n int
		n, ok = lp.write(c, buf)
		progress = progress || n > 0
		if n < len(buf) {
			c.pending = append(c.pending, buf[n:]...)
		}
	}
	if len(c.pending) == 0 {
		c.pending = keepSendBuf(c.pending)
	}
	c.ls.outWanted = len(c.pending) > 0 || c.tlsOutLeft()
	c.wmu.Unlock()
	if p := c.tls; p != nil && p.held && p.answeredLen() <= tlsAnsweredMax {
		// The client took TLS's answers (readTLS held it): read on.
		p.held = false
		lp.kick(c)
	}
	if !ok {
		lp.close(c)
		return
	}
	switch {
	case !c.ls.outWanted:
		if !c.ls.stopping {
			c.ls.writeDeadline = time.Time{}
		}
	case progress || c.ls.writeDeadline.IsZero():
		timeout := lp.h.cfg.WriteTimeout
		if c.ls.stopping {
			timeout = shutdownWriteTimeout
		}
		c.ls.writeDeadline = time.Now().Add(timeout)
		lp.deadline(c.ls.writeDeadline)
	}
	lp.setInterest(c)
	switch {
	case c.ls.outWanted || c.ls.closed:
	case c.ls.stopping:
		lp.close(c)
	case gone:
		lp.linger(c)
	}
}

// write writes b to c's socket until it is all out or the socket is full
// (ok) or the write fails (!ok), encrypted for a TLS connection
// (conn.sendLoop). It is called with wmu held.
func (lp *eloop) write(c *conn, b []byte) (n int, ok bool) { return c.sendLoop(b) }

// linger shuts the server's side of c and reads and drops what the client
// still sends, for a moment, before closing (see lingerClose).
func (lp *eloop) linger(c *conn) {
	if c.ls.lingering || c.ls.closed {
		return
	}
	if c.tls != nil {
		// TLS's closing alert first. A socket that takes all of it
		// shuts at once; one that is full now sends it once it is
		// writable, and the flush that finds nothing more owed comes
		// back here (CloseWrite makes the alert once): shut before it
		// went out, the client would find the end of the stream with
		// no alert, which OpenSSL's clients report as an error.
		c.wmu.Lock()
		c.tls.tc.CloseWrite()
		if testHookLingerSocketFull == nil || !testHookLingerSocketFull() {
			c.sendLoop(nil)
		}
		left := c.tlsOutLeft()
		c.wmu.Unlock()
		if left {
			c.ls.outWanted = true
			if c.ls.writeDeadline.IsZero() {
				c.ls.writeDeadline = time.Now().Add(lp.h.cfg.WriteTimeout)
				lp.deadline(c.ls.writeDeadline)
			}
			lp.setInterest(c)
			return
		}
	}
	if err := unix.Shutdown(c.ls.fd, unix.SHUT_WR); err != nil {
		lp.close(c)
		return
	}
	c.ls.lingering = true
	c.ls.lingerLeftBytes = lingerBytesMax
	c.ls.lingerDeadline = time.Now().Add(lingerTimeout)
	lp.deadline(c.ls.lingerDeadline)
	lp.setInterest(c)
}

// drain reads and drops what a lingering connection's client sends.
func (lp *eloop) drain(c *conn) {
	buf := c.rd.buf[:cap(c.rd.buf)]
	if len(buf) == 0 {
		buf = make([]byte, 4096)
		c.rd.buf = buf
	}
	for {
		n, err := recvNonblock(c.ls.fd, buf[:min(len(buf), c.ls.lingerLeftBytes)])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil || n == 0:
			lp.close(c)
			return
		}
		if c.ls.lingerLeftBytes -= n; c.ls.lingerLeftBytes <= 0 {
			lp.close(c)
			return
		}
	}
}

// close closes c's socket at once.
func (lp *eloop) close(c *conn) {
	if c.ls.closed {
		return
	}
	c.ls.closed = true
	fd := c.ls.fd
	if lp.connAt(fd) == c {
		lp.conns[fd] = nil
		lp.live--
		unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	// Under wmu: a reply being sent now finishes first, and a later one
	// finds fd -1 and does not write to the number, which the next
	// accepted connection may get.
	c.wmu.Lock()
	unix.Close(fd)
	c.ls.fd = -1
	c.pending = nil
	c.wmu.Unlock()
	c.mu.Lock()
	c.readerGone = true
	c.mu.Unlock()
	c.ending.Store(true)
	close(c.dead)
	c.rd.buf = nil
	c.ls.reading = false
	lp.h.forget(c)
}

// sweep acts on the deadlines that passed and finds the next one.
func (lp *eloop) sweep() {
	now := time.Now()
	lp.nextDeadline = time.Time{}
	for _, c := range lp.conns {
		if c == nil {
			continue
		}
		ls := &c.ls
		switch {
		case !ls.lingerDeadline.IsZero() && !now.Before(ls.lingerDeadline):
			lp.close(c)
		case !ls.writeDeadline.IsZero() && !now.Before(ls.writeDeadline):
			// The client has not taken its replies for WriteTimeout (or
			// the shutdown's short wait): give up on it.
			lp.close(c)
		case !ls.readDeadline.IsZero() && !now.Before(ls.readDeadline):
			lp.readStop(c, os.ErrDeadlineExceeded)
		}
		if t := ls.earliest(); !ls.closed && !t.IsZero() {
			lp.deadline(t)
		}
	}
	lp.sweepFrames(now)
}

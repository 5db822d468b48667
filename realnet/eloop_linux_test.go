package realnet

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"dkv/core"
)

// A loop that keeps finding work yields its processor to goroutines that
// wait for one: under a steady pipelined load, beside goroutines that keep
// one of them runnable (one more than the processors), it does so again and
// again, rather than holding the processor until the runtime preempts it.
func TestBusyLoopYields(t *testing.T) {
	cfg := testConfig()
	cfg.EventLoops = 1
	r := startHost(t, newTestNode(t), cfg)
	stop := make(chan struct{})
	var spinners sync.WaitGroup
	for range runtime.GOMAXPROCS(0) + 1 {
		spinners.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		})
	}
	defer spinners.Wait()
	defer close(stop)
	const clients, pings = 8, 64 * 64
	done := make(chan error, clients)
	for range clients {
		nc, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		go func() {
			br := bufio.NewReader(nc)
			for range pings {
				if _, err := br.ReadString('\n'); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			line := strings.Repeat(`{"op":"ping"}`+"\n", 64)
			for range pings / 64 {
				if _, err := io.WriteString(nc, line); err != nil {
					return
				}
			}
		}()
	}
	for range clients {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := r.host.loops[0].yields.Load(); got == 0 {
		t.Errorf("the loop answered %d pipelined pings from %d clients without yielding once", clients*pings, clients)
	}
}

// A notify that lands while the loop takes evfd's event is not lost: the
// hook sends one at that moment, and a later connection, which only a
// notify can make the parked loop register, must still be served.
// (Clearing notified before draining evfd lost it, and the loop slept
// through every notify after it.)
func TestNotifyWhileTheLoopDrainsItsEventfd(t *testing.T) {
	var fired atomic.Bool
	testHookEvfdDrained = func(lp *eloop) {
		if fired.CompareAndSwap(false, true) {
			lp.notify()
		}
	}
	t.Cleanup(func() { testHookEvfdDrained = nil })
	cfg := testConfig()
	cfg.EventLoops = 1
	// No deadline of a connection's may wake the loop within a client's
	// wait for its answer: only a notify can.
	cfg.LineTimeout, cfg.IdleTimeout = time.Minute, time.Minute
	r := startHost(t, newTestNode(t), cfg)
	for i := range 2 {
		if i > 0 {
			// Time for the loop to close the first connection and
			// pass its lingering deadline, then park with no deadline
			// left: only a notify wakes it.
			time.Sleep(lingerTimeout + 200*time.Millisecond)
		}
		nc, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(nc, `{"op":"ping"}`+"\n")
		line, err := bufio.NewReader(nc).ReadString('\n')
		nc.Close()
		if err != nil {
			t.Fatalf("connection %d: no answer: %v", i, err)
		}
		if !strings.Contains(line, `"ok":true`) {
			t.Fatalf("connection %d: %q", i, line)
		}
	}
	if !fired.Load() {
		t.Fatal("the hook never ran: the test did not reach the interleaving it is for")
	}
}

// With fewer loops than processors the loops wait holding theirs and every
// fsync runs inline and raw (disk.File.SyncHeld), however many writes are
// in flight; with a loop per processor they park, and under the same load
// fsyncs go to goroutines of their own (pipelined group commit), through
// the runtime's wrapper.
func TestWaitingLoopsSyncInline(t *testing.T) {
	procs := waitingProcs(t)
	for _, c := range []struct {
		loops      int
		wait       bool
		background bool
	}{{1, true, false}, {procs, false, true}} {
		t.Run(fmt.Sprintf("%d loops", c.loops), func(t *testing.T) {
			cfg := respConfig()
			cfg.EventLoops = c.loops
			r := startSingle(t, cfg)
			if r.host.loopsWait != c.wait {
				t.Fatalf("%d loops of %d processors: loopsWait %v, want %v", c.loops, procs, r.host.loopsWait, c.wait)
			}
			const writers, rounds = 16, 8
			// Concurrent writers put many writes in flight at once,
			// which is when the parked loops sync in the background.
			for round := 0; round < rounds && (!c.background || r.host.backgroundSyncs.Load() == 0); round++ {
				var g errgroup.Group
				for w := range writers {
					g.Go(func() error { return setMany(r.addr, fmt.Sprintf("w%d-%d", round, w), 50) })
				}
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			got := r.host.backgroundSyncs.Load()
			if c.background && got == 0 {
				t.Errorf("%d loops: no fsync went to the background in %d rounds of %d concurrent writers", c.loops, rounds, writers)
			}
			if !c.background && got != 0 {
				t.Errorf("%d waiting loop(s): %d fsyncs went to the background", c.loops, got)
			}
			held := r.host.heldSyncs.Load()
			if c.wait && held == 0 {
				t.Errorf("%d waiting loop(s): no fsync was made raw", c.loops)
			}
			if !c.wait && held != 0 {
				t.Errorf("%d parked loops: %d fsyncs were made raw, holding a processor the runtime could have used", c.loops, held)
			}
		})
	}
}

// A waiting loop's epoll_wait ends for a deadline, though nothing arrives:
// a partial line still times out.
func TestWaitingLoopKeepsDeadlines(t *testing.T) {
	waitingProcs(t)
	cfg := respConfig()
	cfg.EventLoops = 1
	cfg.LineTimeout = 200 * time.Millisecond
	r := startSingle(t, cfg)
	if !r.host.loopsWait {
		t.Fatal("one loop does not wait holding its processor")
	}
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, `{"op":"pi`)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a stalled line: %v", err)
	}
	if !strings.Contains(line, "timeout") {
		t.Fatalf("a stalled line got %q, want a timeout error", line)
	}
}

// setMany makes n durable sets one after another on a connection of its
// own, and checks every answer.
func setMany(addr, prefix string, n int) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	for i := range n {
		if _, err := fmt.Fprintf(nc, `{"op":"set","key":"%s-%d","value":"v","id":%d}`+"\n", prefix, i, i); err != nil {
			return err
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if want := fmt.Sprintf(`{"id":%d,"ok":true}`, i); strings.TrimSpace(line) != want {
			return fmt.Errorf("set %s-%d: got %q, want %s", prefix, i, line, want)
		}
	}
	return nil
}

// Where loops wait, an event posted from another goroutine (a peer's
// message, a timer) runs on a loop, which a post wakes; where they park, it
// runs on the goroutine that posts it, if the node is idle.
func TestPostsRunOnAWaitingLoop(t *testing.T) {
	procs := waitingProcs(t)
	for _, c := range []struct {
		loops  int
		onLoop bool
	}{{1, true}, {procs, false}} {
		t.Run(fmt.Sprintf("%d loops", c.loops), func(t *testing.T) {
			cfg := testConfig()
			cfg.EventLoops = c.loops
			r := startHost(t, newTestNode(t), cfg)
			for i := range 20 {
				// Let the loop go to sleep in epoll_wait first, so
				// that only the post's wake-up can run the event soon.
				time.Sleep(time.Millisecond)
				ran := make(chan bool, 1)
				if !r.host.post(func() {
					// On a loop's goroutine, its run is on the stack.
					stack := make([]byte, 64<<10)
					stack = stack[:runtime.Stack(stack, false)]
					ran <- strings.Contains(string(stack), "(*eloop).run")
				}) {
					t.Fatal("post refused")
				}
				select {
				case on := <-ran:
					if on != c.onLoop {
						t.Fatalf("post %d: ran on a loop %v, want %v", i, on, c.onLoop)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("post %d never ran", i)
				}
			}
		})
	}
}

// TestWaitingLoopKeepsTheRole: a chain of events, each posting the next
// from its turn, keeps the node busy for many turns in a row, past
// inlineTurnsMax. A waiting loop runs them all itself, pass after pass;
// before, the third went to Run's goroutine, fsync and all.
func TestWaitingLoopKeepsTheRole(t *testing.T) {
	waitingProcs(t)
	cfg := testConfig()
	cfg.EventLoops = 1
	cfg.EventsPerTurnMax = 1 // a turn per event of the chain
	r := startHost(t, newTestNode(t), cfg)
	const chainLen = 5 * inlineTurnsMax
	offLoop := make(chan int, chainLen)
	done := make(chan struct{})
	var link func(i int) func()
	link = func(i int) func() {
		return func() {
			stack := make([]byte, 64<<10)
			stack = stack[:runtime.Stack(stack, false)]
			if !strings.Contains(string(stack), "(*eloop).run") {
				offLoop <- i
			}
			if i+1 == chainLen {
				close(done)
				return
			}
			if !r.host.post(link(i + 1)) {
				t.Errorf("post %d refused", i+1)
			}
		}
	}
	time.Sleep(time.Millisecond) // let the loop sleep in epoll_wait
	if !r.host.post(link(0)) {
		t.Fatal("post refused")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the chain of posts never ended")
	}
	close(offLoop)
	for i := range offLoop {
		t.Errorf("event %d of the chain ran off the loop", i)
	}
}

// waitingProcs is the runtime's processor count, and skips the test where
// it is one: there loops never wait holding a processor.
func waitingProcs(t *testing.T) int {
	t.Helper()
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 {
		t.Skip("one processor: loops never wait holding it")
	}
	return procs
}

// TestPrepareWhereReadsAreParallel: HostConfig.Prepare runs on the
// requests of several loops and of a goroutine a connection, which read in
// parallel, and not on those of one loop, whose passes every request waits
// for (Host.prepare).
func TestPrepareWhereReadsAreParallel(t *testing.T) {
	procs := max(runtime.GOMAXPROCS(0), 2)
	for _, c := range []struct {
		loops   int
		prepare bool
	}{{1, false}, {procs, true}, {0, true}} {
		t.Run(fmt.Sprintf("%d loops", c.loops), func(t *testing.T) {
			var prepared atomic.Int64
			cfg := respConfig()
			cfg.EventLoops = c.loops
			cfg.Prepare = func(req *core.Request) {
				if req.Op == core.OpSet {
					prepared.Add(1)
				}
			}
			r := startSingle(t, cfg)
			const sets = 20
			if err := setMany(r.addr, "p", sets); err != nil {
				t.Fatal(err)
			}
			got := prepared.Load()
			if c.prepare && got != sets {
				t.Errorf("%d loops: Prepare ran on %d of %d sets", c.loops, got, sets)
			}
			if !c.prepare && got != 0 {
				t.Errorf("one loop: Prepare ran on %d sets", got)
			}
		})
	}
}

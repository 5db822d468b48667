package realnet

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A loop that keeps finding work yields its processor every
// loopBusyPassesMax passes: under a steady pipelined load it does so
// again and again, rather than holding the processor until the runtime
// preempts it.
func TestBusyLoopYields(t *testing.T) {
	cfg := testConfig()
	cfg.EventLoops = 1
	r := startHost(t, newTestNode(t), cfg)
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

package realnet

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
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

package main

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/historytest"
	"dkv/internal/nodeproc"
)

// The simulator checks the node logic; this checks the rest of the path a
// real write takes, with the same checkers: the real server process (its
// host, which runs the node on whichever goroutine queued the work, its
// connections, its disk) and the real client (which pipelines many callers
// over one connection and passes the read between them). Clients run a
// random mix of ops on a few keys, some with deadlines so short that they
// give up mid-flight; the server is SIGKILLed twice under that load and
// restarted; then every key is read. The history must be linearizable per
// key, every acknowledged write must survive, and no BulkSet may be seen in
// part.
func TestRealServerHistoryIsLinearizable(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	// Small segments and snapshots, so that rolls and snapshots happen
	// under the load too.
	args := []string{"--port", strconv.Itoa(port), "--segment-bytes", "16384", "--snapshot-log-bytes", "65536"}
	s := start(t, dir, args...)
	addr := s.addr

	rec := historytest.NewRecorder()

	// Four callers share one client, to put the pipelining and the passing
	// of the read role through this too; four have one each.
	shared, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	const workers, keys = 8, 6
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		c := shared
		if w >= 4 {
			own, err := client.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer own.Close()
			c = own
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			caller := historytest.Caller{KV: c, Keys: keys, Rand: rand.New(rand.NewPCG(uint64(w), 11)), ID: w, Rec: rec,
				Patient: 5 * time.Second, Impatient: 2 * time.Millisecond}
			for req := 0; !stop.Load(); req++ {
				caller.Call(req)
			}
		}()
	}

	for range 2 {
		time.Sleep(time.Second)
		kill(s)
		s = start(t, dir, args...)
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	// The final reads, after one more crash: durability is judged on them.
	kill(s)
	s = start(t, dir, args...)
	historytest.FinalReads(t, dial(t, s.addr), workers, keys, 10*time.Second, rec)
	historytest.Judge(t, rec, 500)
}

// freePort is a port free now, below the ephemeral range, as
// freeLoopbackAddr's.
func freePort(t *testing.T) int {
	t.Helper()
	ports, err := nodeproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

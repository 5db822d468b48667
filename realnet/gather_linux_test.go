//go:build linux

package realnet

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"dkv/core"
	"dkv/disk"
)

// slowSyncDisk is a real disk whose files take syncDelay more to sync: a
// slow disk, whose fsyncs the gathering's wait is measured against.
type slowSyncDisk struct {
	core.Disk
	syncDelay time.Duration
}

type slowSyncFile struct {
	core.File
	delay time.Duration
}

func (f slowSyncFile) Sync() error {
	time.Sleep(f.delay)
	return f.File.Sync()
}

func (d slowSyncDisk) Create(name string) (core.File, error) {
	f, err := d.Disk.Create(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{File: f, delay: d.syncDelay}, nil
}

func (d slowSyncDisk) OpenAppend(name string) (core.File, error) {
	f, err := d.Disk.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{File: f, delay: d.syncDelay}, nil
}

// startGathering runs a single node on a disk whose fsyncs take 800 ms,
// served by one waiting event loop with waitMax, and returns it with the
// node and its host's metrics.
func startGathering(t *testing.T, waitMax time.Duration) (*running, *core.SingleNode, *recordedMetrics) {
	t.Helper()
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("the event loop fsyncs inline only where it has a processor of its own: GOMAXPROCS is 1")
	}
	d, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	node := core.NewSingleNode(core.DefaultSingleConfig())
	cfg := testConfig()
	cfg.EventLoops = 1
	// Past the limit validate allows, so that the fsync's 800 ms bound
	// the wait, not waitMax (and its first eighth, 100 ms, is the probe
	// that worthWaiting takes before it judges): a slow CI machine has
	// room.
	m := &recordedMetrics{}
	setWait := func(h *Host) {
		h.cfg.GatherWaitMax = waitMax
		h.SetMetrics(m)
	}
	r := startHostOn(t, node, slowSyncDisk{Disk: d, syncDelay: 800 * time.Millisecond}, cfg, setWait)
	if !r.host.loopsWait {
		t.Fatal("one loop with two processors or more should wait in epoll_wait and fsync inline")
	}
	return r, node, m
}

// gatheredCount returns the waits m heard of that ended with outcome,
// or all of them for "".
func (m *recordedMetrics) gatheredCount(outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if outcome != "" {
		return m.gathered[outcome]
	}
	n := 0
	for _, k := range m.gathered {
		n += k
	}
	return n
}

// batches returns the node's committed batches, read on its goroutine.
func batches(t *testing.T, h *Host, node *core.SingleNode) int64 {
	t.Helper()
	got := make(chan int64, 1)
	if !h.Post(func() { got <- node.Metrics().Log.Batches }) {
		t.Fatal("the node has stopped")
	}
	return <-got
}

// A client answered by a sync's replies that sends again soon joins the
// batch of a request that came meanwhile: the loop holds that batch back
// for it, rather than commit it alone and leave the client a whole fsync
// behind. Client a's set is synced (800 ms); b's set comes during that
// sync; a sends again 20 ms after its reply. With gathering the two make
// one batch; without, b's is committed alone, as the loop reads it the
// moment a's reply has gone, and a's next one in a third batch. Nor does
// the loop wait for a client that is slow to send again: a's next set 300
// ms after its reply, when nothing came in the wait's first 100 ms
// (worthWaiting), leaves b's batch to go alone.
func TestGatherJoinsAnAnsweredClientToTheNextBatch(t *testing.T) {
	for _, tc := range []struct {
		waitMax, aDelay time.Duration
		batches         int64
		full, cut       int64 // waits that took every awaited client; waits cut short
	}{
		{time.Second, 20 * time.Millisecond, 2, 1, 0},
		{0, 20 * time.Millisecond, 3, 0, 0},
		// Cut twice: b's batch waits for a, then a's (which comes
		// during b's sync) for b, who sends no more.
		{time.Second, 300 * time.Millisecond, 3, 0, 2},
	} {
		t.Run(fmt.Sprintf("waitMax=%v,aDelay=%v", tc.waitMax, tc.aDelay), func(t *testing.T) {
			r, node, m := startGathering(t, tc.waitMax)
			a, b := dial(t, r.addr), dial(t, r.addr)
			before := batches(t, r.host, node)
			a.send(`{"id":1,"op":"set","key":"a","value":"1"}` + "\n")
			time.Sleep(100 * time.Millisecond) // a's batch is in its fsync
			b.send(`{"id":2,"op":"set","key":"b","value":"2"}` + "\n")
			if resp := a.recv(); !resp.OK {
				t.Fatalf("a's first set: %+v", resp)
			}
			time.Sleep(tc.aDelay)
			a.send(`{"id":3,"op":"set","key":"a","value":"3"}` + "\n")
			if resp := b.recv(); !resp.OK {
				t.Fatalf("b's set: %+v", resp)
			}
			if resp := a.recv(); !resp.OK {
				t.Fatalf("a's second set: %+v", resp)
			}
			if got := batches(t, r.host, node) - before; got != tc.batches {
				t.Fatalf("the three sets took %d batches, want %d", got, tc.batches)
			}
			full, cut := m.gatheredCount(GatherAllSent), m.gatheredCount(GatherTooSlow)
			if int64(full) != tc.full || int64(cut) != tc.cut || m.gatheredCount(GatherDeadline) != 0 {
				t.Fatalf("the metrics heard %d waits end %s, %d %s and %d %s; want %d, %d and 0", full, GatherAllSent, cut, GatherTooSlow, m.gatheredCount(GatherDeadline), GatherDeadline, tc.full, tc.cut)
			}
		})
	}
}

// A lone client never waits: its own next request is the one the loop
// would wait for. Nor does a read, which commits nothing: b's get, made
// while a (answered by a sync) stays silent, is answered at once.
func TestGatherWaitsForNoLoneClientNorARead(t *testing.T) {
	r, _, m := startGathering(t, time.Second)
	a := dial(t, r.addr)
	for i := range 3 {
		a.send(fmt.Sprintf(`{"id":%d,"op":"set","key":"a","value":"%d"}`+"\n", i, i))
		if resp := a.recv(); !resp.OK {
			t.Fatalf("set %d: %+v", i, resp)
		}
	}
	if n := m.gatheredCount(""); n != 0 {
		t.Fatalf("a lone client's sets waited %d times", n)
	}
	b := dial(t, r.addr) // now: the test's idle timeout is 2 s
	b.send(`{"id":9,"op":"get","key":"a"}` + "\n")
	if resp := b.recv(); !resp.OK || resp.Value == nil || *resp.Value != "2" {
		t.Fatalf("get: %+v", resp)
	}
	if n := m.gatheredCount(""); n != 0 {
		t.Fatalf("a read waited %d times for a silent client", n)
	}
}

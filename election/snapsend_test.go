package election_test

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/election"
)

// readWatch is a node's disk that records how the node reads snapshot
// files: whole (ReadFile), or a range at a time (OpenRead, ReadAt).
type readWatch struct {
	core.Disk
	watching    bool // count from now on (recovery reads its snapshot whole)
	wholeReads  []string
	rangeReads  int
	rangeMax    int // the most bytes one ReadAt asked for
	rangeBytes  int
	openHandles int
	open        map[string]int // the files open, by name
}

func isSnapFile(name string) bool {
	return strings.HasPrefix(name, "snap-") && !strings.HasSuffix(name, ".tmp")
}

func (d *readWatch) ReadFile(name string) ([]byte, error) {
	if d.watching && isSnapFile(name) {
		d.wholeReads = append(d.wholeReads, name)
	}
	return d.Disk.ReadFile(name)
}

func (d *readWatch) OpenRead(name string) (core.ReadHandle, error) {
	h, err := core.OpenRead(d.Disk, name)
	if err != nil {
		return nil, err
	}
	d.openHandles++
	if d.open == nil {
		d.open = map[string]int{}
	}
	d.open[name]++
	return &watchedHandle{ReadHandle: h, d: d, name: name}, nil
}

type watchedHandle struct {
	core.ReadHandle
	d    *readWatch
	name string
}

func (h *watchedHandle) ReadAt(p []byte, off int64) (int, error) {
	n, err := h.ReadHandle.ReadAt(p, off)
	h.d.rangeReads++
	h.d.rangeMax = max(h.d.rangeMax, len(p))
	h.d.rangeBytes += n
	return n, err
}

func (h *watchedHandle) Close() error {
	h.d.openHandles--
	if h.d.open[h.name]--; h.d.open[h.name] == 0 {
		delete(h.d.open, h.name)
	}
	return h.ReadHandle.Close()
}

// compactingNode0 configures a cluster whose node 0 leads first (a short
// election timeout) and compacts its log often, while the others never
// snapshot and so hold every entry; snapshots go in chunks of 256 bytes.
func compactingNode0(i int, cfg *election.NodeConfig) {
	cfg.SnapChunkBytes = 256
	if i == 0 {
		cfg.ElectionTicks = 3
		cfg.SnapshotLogBytesMin = 1 << 10
		cfg.SegmentBytesMax = 1 << 10
	}
}

// lagBehind waits for node 0 to lead (the test is skipped if another
// does) and sends it 100 writes while node 2 is cut off.
func lagBehind(t *testing.T, c *nodeCluster) {
	t.Helper()
	if l, _ := c.waitLeader(-1, 200); l != 0 {
		t.Skipf("node %d leads, not node 0", l)
	}
	c.cut[2] = true
	value := strings.Repeat("v", 100)
	for i := 0; i < 100; i++ {
		if r := c.do(0, setReq(fmt.Sprintf("k%03d", i), value), 20); !r.OK {
			t.Fatalf("set: %+v", r.Error)
		}
	}
}

// lagSetup is a cluster of three whose node 0 leads and compacts its log,
// with node 2 cut off while 100 writes go in: node 2 needs node 0's
// snapshot when it comes back. Node 0's disk is watched.
func lagSetup(t *testing.T) (*nodeCluster, *readWatch) {
	t.Helper()
	var watch *readWatch
	c := newNodeClusterDisks(t, 3, compactingNode0, func(i int, d core.Disk) core.Disk {
		if i != 0 {
			return d
		}
		watch = &readWatch{Disk: d}
		return watch
	})
	lagBehind(t, c)
	watch.watching = true
	return c, watch
}

func snapIndex(c *nodeCluster, i int) uint64 {
	return c.do(i, &core.Request{Op: core.OpStatus}, 20).Status.SnapshotIndex
}

func logged(c *nodeCluster, i int, part string) bool {
	for _, line := range c.logs[i] {
		if strings.Contains(line, part) {
			return true
		}
	}
	return false
}

// A leader sends a snapshot reading each chunk when it sends it: it never
// reads the file whole, nor asks one read for more than a chunk. It read
// the whole file into memory at the transfer's start, in its event loop,
// and held it while any send ran: 148 MB stalled a leader for a second,
// past its followers' election timeout (found by review).
func TestLeaderReadsSnapshotAChunkAtATime(t *testing.T) {
	c, watch := lagSetup(t)
	index := snapIndex(c, 0)
	if index == 0 {
		t.Fatal("node 0 took no snapshot")
	}
	c.cut[2] = false
	for range 40 {
		c.step()
	}
	if !logged(c, 2, "installed the leader's snapshot") {
		t.Fatalf("node 2 installed no snapshot")
	}
	if v, ok := c.nodes[2].Store().Get("k099"); !ok || v == "" {
		t.Fatalf("node 2 lacks k099 after the install")
	}
	if len(watch.wholeReads) > 0 {
		t.Fatalf("the leader read snapshot files whole to send them: %v", watch.wholeReads)
	}
	if watch.rangeReads == 0 || watch.rangeMax > 256 {
		t.Fatalf("the leader read the snapshot in %d reads of up to %d bytes, for chunks of 256", watch.rangeReads, watch.rangeMax)
	}
	if watch.openHandles != 0 {
		t.Fatalf("the leader keeps %d snapshot handles open after the transfer", watch.openHandles)
	}
	t.Logf("%d reads, %d bytes, at most %d a read", watch.rangeReads, watch.rangeBytes, watch.rangeMax)
}

// A snapshot that a newer one replaces while it is being sent (the
// snapshotter removes the older file) ends that transfer, and the next
// one, of the newer snapshot, brings the follower up to date.
func TestSnapshotReplacedMidTransferEndsIt(t *testing.T) {
	c, watch := lagSetup(t)
	first := snapIndex(c, 0)
	if first == 0 {
		t.Fatal("node 0 took no snapshot")
	}
	// Node 2 comes back; after a few chunks it is cut off again, and node
	// 0 takes in writes until it has a newer snapshot.
	chunks := c.cutAfterChunks(3, 2)
	c.cut[2] = false
	for i := 0; *chunks < 3 && i < 40; i++ {
		c.step()
	}
	if *chunks < 3 {
		t.Fatalf("node 2 got %d chunks", *chunks)
	}
	c.onDeliver = nil
	value := strings.Repeat("w", 100)
	for i := 0; snapIndex(c, 0) == first; i++ {
		if i == 100 {
			t.Fatalf("no new snapshot after 100 writes")
		}
		if r := c.do(0, setReq(fmt.Sprintf("n%03d", i), value), 20); !r.OK {
			t.Fatalf("set: %+v", r.Error)
		}
	}
	second := snapIndex(c, 0)
	if !logged(c, 0, fmt.Sprintf("ending the transfer of the snapshot at %d to node 2", first)) {
		t.Fatalf("the snapshot at %d was replaced by the one at %d, and its transfer did not end", first, second)
	}
	// Raft asks again at once, with the newer snapshot: only its file
	// may be open.
	if old := core.SnapshotName(first); watch.open[old] > 0 || watch.openHandles > 1 {
		t.Fatalf("the leader keeps the replaced snapshot %s open: %v", old, watch.open)
	}
	if r := c.do(0, setReq("last", "1"), 20); !r.OK {
		t.Fatalf("set: %+v", r.Error)
	}
	c.cut[2] = false
	for range 60 {
		c.step()
	}
	if !logged(c, 2, fmt.Sprintf("installed the leader's snapshot at index %d", snapIndex(c, 0))) {
		t.Fatalf("node 2 did not install the newer snapshot (at %d)", snapIndex(c, 0))
	}
	if v, ok := c.nodes[2].Store().Get("last"); !ok || v != "1" {
		t.Fatalf("node 2 did not catch up: %q %v", v, ok)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
	"dkv/internal/nodeproc"
)

// The tests here run a cluster's or a mesh's node on a small tmpfs, fill
// it to the last byte and SIGKILL and restart the node on it. They start
// real processes with internal/nodeproc, running this test binary as the
// server (serverEnv), as the single-node tests do.

// diskWaitMax bounds every wait for nodes to do what they should do in
// well under a second: generous, so that only a real failure trips it.
const diskWaitMax = 30 * time.Second

// sizedTmpfs mounts a tmpfs of size (as mount takes it, "8m") for a test to
// fill, or skips the test where it cannot (mounting needs root); it is
// unmounted at the end.
func sizedTmpfs(t *testing.T, size string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	return mnt
}

// fillDisk writes the file name under mnt until the file system has no
// byte left, and returns its path. A later call adds to it.
func fillDisk(t *testing.T, mnt, name string) string {
	t.Helper()
	path := filepath.Join(mnt, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			chunk = chunk[:len(chunk)/2] // the last pages, down to one byte
		}
	}
	return path
}

// diskNodes prepares a cluster (or, with mesh, a mesh) of 3 nodes of this
// binary whose node 2 keeps its data on mnt, and kills them when the test
// ends, printing their logs if it failed.
func diskNodes(t *testing.T, mesh bool, mnt string, extra ...string) *nodeproc.Cluster {
	t.Helper()
	t.Setenv(serverEnv, "1") // the nodes are this binary, running main
	newNodes := nodeproc.NewCluster
	if mesh {
		newNodes = nodeproc.NewMesh
	}
	c, err := newNodes(os.Args[0], t.TempDir(), 3, extra...)
	if err != nil {
		t.Fatal(err)
	}
	// A later --data-dir wins over the one nodeproc gives.
	c.NodeExtra = [][]string{nil, nil, {"--data-dir", filepath.Join(mnt, "node2")}}
	t.Cleanup(func() {
		c.KillAll()
		if t.Failed() {
			t.Logf("node logs:\n%s", c.Logs())
		}
	})
	return c
}

func startNode(t *testing.T, c *nodeproc.Cluster, i int) {
	t.Helper()
	if _, err := c.Start(i); err != nil {
		t.Fatalf("%v; node logs:\n%s", err, c.Logs())
	}
}

func dialNode(t *testing.T, addr string) *client.KVClient {
	t.Helper()
	kv, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	return kv
}

// A cluster node whose disk is full to the last byte starts (it used to
// refuse: its raft-state is rewritten afresh at each start, and there was
// no room for the copy), the cluster goes on committing without it, and
// once space is freed it catches up without a restart; every write the
// cluster acknowledged is there after it was SIGKILLed on the full disk.
func TestDiskFullClusterNodeStartsAndCatchesUp(t *testing.T) {
	mnt := sizedTmpfs(t, "8m")
	c := diskNodes(t, false, mnt)
	// Node 2, the one whose disk fills, is to be a follower. A new
	// cluster elects its first leader only with every node up; should
	// node 2 lead, a graceful stop hands the office to another.
	for i := range 3 {
		startNode(t, c, i)
	}
	if l, _, err := c.WaitLeader(diskWaitMax); err != nil {
		t.Fatal(err)
	} else if l == 2 {
		if err := c.Stop(2, diskWaitMax); err != nil {
			t.Fatal(err)
		}
		startNode(t, c, 2)
		if l, _, err := c.WaitLeader(diskWaitMax); err != nil || l == 2 {
			t.Fatalf("leader %d after node 2 handed the office over: %v", l, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*diskWaitMax)
	defer cancel()
	kv, err := client.DialCluster(ctx, c.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()

	value := strings.Repeat("v", 64<<10)
	acked := map[string]string{}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			key := fmt.Sprint("k", i)
			if err := kv.Set(ctx, key, value); err != nil {
				t.Fatalf("set %s: %v (two nodes of three have room)", key, err)
			}
			acked[key] = value
		}
	}
	write(0, 5)
	fill := fillDisk(t, mnt, "fill")
	// More than the log's space reserved ahead: node 2 runs out of room.
	write(5, 40)
	c.Kill(2)
	fillDisk(t, mnt, "fill")

	startNode(t, c, 2) // on a disk without a free byte
	if !strings.Contains(c.Logs(), "the disk is full") {
		t.Errorf("node 2 did not say that it started on a full disk; logs:\n%s", c.Logs())
	}
	write(40, 60)
	for k, v := range acked {
		if got, err := kv.Get(ctx, k); err != nil || got != v {
			t.Fatalf("get %s with node 2's disk full: %d bytes, %v", k, len(got), err)
		}
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	// Room again: node 2 catches up by itself, with no restart.
	_, st, err := c.WaitLeader(diskWaitMax)
	if err != nil {
		t.Fatal(err)
	}
	waitApplied := func(index uint64) {
		t.Helper()
		deadline := time.Now().Add(diskWaitMax)
		for {
			st2, err := c.Status(2, time.Second)
			if err == nil && st2.Applied >= index {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node 2 has not applied index %d %v after space was freed: %+v, %v", index, diskWaitMax, st2, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitApplied(st.Commit)
	if c.Node(2).Exited() {
		t.Fatal("node 2 exited")
	}

	// Node 2's copy is whole and durable: with node 0 down, nodes 1 and
	// 2 serve every acknowledged write, after node 2 was SIGKILLed.
	c.Kill(2)
	startNode(t, c, 2)
	_, st, err = c.WaitLeader(diskWaitMax)
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(st.Commit)
	c.Kill(0)
	for k, v := range acked {
		if got, err := kv.Get(ctx, k); err != nil || got != v {
			t.Fatalf("get %s from nodes 1 and 2: %d bytes, %v", k, len(got), err)
		}
	}
}

// A mesh node whose disk is full to the last byte refuses the writes sent
// to it that do not fit with disk_full, and starts after a SIGKILL on the
// full disk (it used to refuse: its mesh-state is rewritten afresh at each
// start); it serves every write it acknowledged, and once space is freed
// it takes writes again and catches up on its peers' without a restart.
func TestDiskFullMeshNodeStartsAndTakesWritesAgain(t *testing.T) {
	mnt := sizedTmpfs(t, "8m")
	c := diskNodes(t, true, mnt, "--anti-entropy-interval", "100ms")
	for i := range 3 {
		startNode(t, c, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*diskWaitMax)
	defer cancel()
	full, other := dialNode(t, c.Addr(2)), dialNode(t, c.Addr(0))

	value := strings.Repeat("v", 64<<10)
	acked := map[string]bool{}     // acknowledged by node 2
	elsewhere := map[string]bool{} // acknowledged by node 0
	fill := fillDisk(t, mnt, "fill")
	refused := 0
	for i := 0; i < 40; i++ {
		key := fmt.Sprint("k", i)
		err := full.Set(ctx, key, value)
		switch {
		case err == nil:
			acked[key] = true
		case isCode(err, core.CodeDiskFull) && strings.Contains(err.Error(), "no space left on device"):
			refused++
		default:
			t.Fatalf("set %s on the full disk: %v, want ok or disk_full naming the disk's error", key, err)
		}
		if err := other.Set(ctx, "o"+key, value); err != nil {
			t.Fatalf("set o%s on node 0: %v", key, err)
		}
		elsewhere["o"+key] = true
	}
	if refused == 0 {
		t.Fatalf("2.5 MiB into a full disk: no write refused")
	}
	c.Kill(2)
	fillDisk(t, mnt, "fill")
	startNode(t, c, 2) // on a disk without a free byte
	if !strings.Contains(c.Logs(), "the disk is full") {
		t.Errorf("node 2 did not say that it started on a full disk; logs:\n%s", c.Logs())
	}
	full = dialNode(t, c.Addr(2))
	for k := range acked {
		// A read that comes after a batch of the peers' writes that the
		// full disk refused is answered unavailable, retry: the peers
		// push the writes node 2 lacks, and each such batch fails.
		got, err := full.Get(ctx, k)
		for tries := 0; isCode(err, core.CodeUnavailable) && tries < 100; tries++ {
			time.Sleep(10 * time.Millisecond)
			got, err = full.Get(ctx, k)
		}
		if err != nil || got != value {
			t.Fatalf("get %s from node 2 restarted on its full disk: %d bytes, %v", k, len(got), err)
		}
	}
	if err := full.Set(ctx, "big", value); !isCode(err, core.CodeDiskFull) {
		t.Fatalf("a 64 KiB write on the full disk: %v, want disk_full", err)
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	// Room again, with no restart: node 2 takes writes and catches up.
	if err := full.Set(ctx, "big", value); err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
	acked["big"] = true
	deadline := time.Now().Add(diskWaitMax)
	for k := range elsewhere {
		for {
			got, err := full.Get(ctx, k)
			if err == nil && got == value {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node 2 lacks node 0's %s %v after space was freed: %d bytes, %v", k, diskWaitMax, len(got), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Alone, so that no peer makes up for what it lost.
	c.KillAll()
	startNode(t, c, 2)
	full = dialNode(t, c.Addr(2))
	for k := range mergeKeys(acked, elsewhere) {
		if got, err := full.Get(ctx, k); err != nil || got != value {
			t.Fatalf("get %s from node 2 alone after a SIGKILL: %d bytes, %v", k, len(got), err)
		}
	}
}

func mergeKeys(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Writers race a mesh node's disk as it fills, and the node is SIGKILLed
// among them: every write it acknowledged is on its disk after a restart
// on the full disk (read from it alone, with no peer to make up for a
// loss), and every write it refused was refused with disk_full, naming
// the disk's error.
func TestDiskFullMeshWritersAndSIGKILL(t *testing.T) {
	mnt := sizedTmpfs(t, "8m")
	c := diskNodes(t, true, mnt)
	for i := range 3 {
		startNode(t, c, i)
	}
	// About 3 MiB left for the writers to fill.
	fill := fillDisk(t, mnt, "fill")
	st, err := os.Stat(fill)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fill, st.Size()-3<<20); err != nil {
		t.Fatal(err)
	}

	const writers, writes = 4, 25 // 4.7 MiB
	type result struct {
		acked   []string
		refused int
		err     error // one that is neither: after the kill, the outcome is unknown
	}
	results := make(chan result, writers)
	killed := make(chan struct{})
	for w := range writers {
		go func() {
			var r result
			defer func() { results <- r }()
			kv, err := client.Dial(c.Addr(2))
			if err != nil {
				r.err = err
				return
			}
			defer kv.Close()
			value := strings.Repeat(string(rune('a'+w)), 48<<10)
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), diskWaitMax)
				err := kv.Set(ctx, key, value)
				cancel()
				switch {
				case err == nil:
					r.acked = append(r.acked, key)
				case isCode(err, core.CodeDiskFull) && strings.Contains(err.Error(), "no space left on device"):
					r.refused++
				default:
					select {
					case <-killed:
					default:
						r.err = fmt.Errorf("set %s before the kill: %w", key, err)
					}
					return
				}
			}
		}()
	}
	// Kill once the disk has refused writes for a while.
	deadline := time.Now().Add(diskWaitMax)
	for !strings.Contains(c.Logs(), "write failed, batch undone") {
		if time.Now().After(deadline) {
			t.Fatalf("no write refused after %v", diskWaitMax)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(killed)
	c.KillAll()
	acked, refused := 0, 0
	var keys []string
	for range writers {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
		}
		keys = append(keys, r.acked...)
		acked += len(r.acked)
		refused += r.refused
	}
	if refused == 0 {
		t.Fatal("the disk refused no write")
	}
	fillDisk(t, mnt, "fill")
	startNode(t, c, 2) // alone, on a disk without a free byte
	kv := dialNode(t, c.Addr(2))
	ctx, cancel := context.WithTimeout(context.Background(), diskWaitMax)
	defer cancel()
	for _, k := range keys {
		w := k[1] - '0'
		if got, err := kv.Get(ctx, k); err != nil || got != strings.Repeat(string(rune('a'+w)), 48<<10) {
			t.Fatalf("get %s, acknowledged before the SIGKILL: %d bytes, %v", k, len(got), err)
		}
	}
	t.Logf("%d writes acknowledged, %d refused with disk_full", acked, refused)
}

// Writers race a cluster leader's disk as it fills: the leader steps
// down, another takes over, and the writers go on through it; the old
// leader is SIGKILLed among them and restarts on its full disk. Every
// write the cluster acknowledged is there, and once space is freed the
// old leader catches up without a restart.
func TestDiskFullClusterLeaderWritersAndSIGKILL(t *testing.T) {
	var mnts []string
	for range 3 {
		mnts = append(mnts, sizedTmpfs(t, "16m")) // the others keep room for all
	}
	c := diskNodes(t, false, mnts[2])
	c.NodeExtra = [][]string{{"--data-dir", filepath.Join(mnts[0], "node0")},
		{"--data-dir", filepath.Join(mnts[1], "node1")}, {"--data-dir", filepath.Join(mnts[2], "node2")}}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	lead, _, err := c.WaitLeader(diskWaitMax)
	if err != nil {
		t.Fatal(err)
	}
	// About 2 MiB left on the leader's disk for the writers to fill.
	fill := fillDisk(t, mnts[lead], "fill")
	st, err := os.Stat(fill)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fill, st.Size()-2<<20); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*diskWaitMax)
	defer cancel()
	kv, err := client.DialCluster(ctx, c.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	const writers, writes = 4, 25 // 4.7 MiB
	type result struct {
		acked   []string
		refused int
		err     error
	}
	results := make(chan result, writers)
	killed := make(chan struct{})
	value := func(w byte) string { return strings.Repeat(string(rune('a'+w)), 48<<10) }
	for w := range byte(writers) {
		go func() {
			var r result
			defer func() { results <- r }()
			for i := range writes {
				key := fmt.Sprintf("w%d-%d", w, i)
				wctx, wcancel := context.WithTimeout(ctx, diskWaitMax)
				err := kv.Set(wctx, key, value(w))
				wcancel()
				switch {
				case err == nil:
					r.acked = append(r.acked, key)
					continue
				case isCode(err, core.CodeDiskFull) && strings.Contains(err.Error(), "no space left on device"):
					// The leader refused it, before it stepped down.
					r.refused++
					continue
				}
				select {
				case <-killed: // its outcome is unknown, and so may be the next ones'
				default:
					r.err = fmt.Errorf("set %s before the kill (two disks of three have room): %w", key, err)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(diskWaitMax)
	for !strings.Contains(c.Node(lead).Stderr(), "stepping down") {
		if time.Now().After(deadline) {
			t.Fatalf("node %d, the leader, did not step down %v after its disk filled", lead, diskWaitMax)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(killed)
	c.Kill(lead)
	var keys []string
	refused := 0
	for range writers {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
		}
		keys = append(keys, r.acked...)
		refused += r.refused
	}
	fillDisk(t, mnts[lead], "fill")
	startNode(t, c, lead) // on a disk without a free byte
	check := func(when string) {
		t.Helper()
		for _, k := range keys {
			if got, err := kv.Get(ctx, k); err != nil || got != value(k[1]-'0') {
				t.Fatalf("get %s, acknowledged, %s: %d bytes, %v", k, when, len(got), err)
			}
		}
	}
	check("with the old leader back on its full disk")

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	_, st2, err := c.WaitLeader(diskWaitMax)
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(diskWaitMax)
	for {
		s, err := c.Status(lead, time.Second)
		if err == nil && s.Applied >= st2.Commit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d has not applied index %d %v after space was freed: %+v, %v", lead, st2.Commit, diskWaitMax, s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	check("once the old leader caught up")
	t.Logf("%d writes acknowledged, %d refused with disk_full", len(keys), refused)
}

// Every mesh node's disk full (replicas hold the same data, so equal disks
// fill together): each node serves reads and refuses the writes that do
// not fit with disk_full; once space is freed they take writes again,
// with no restart, and the write reaches every node.
func TestDiskFullOnEveryMeshNode(t *testing.T) {
	var mnts []string
	var fills []string
	for range 3 {
		mnts = append(mnts, sizedTmpfs(t, "4m"))
	}
	c := diskNodes(t, true, mnts[2], "--anti-entropy-interval", "100ms")
	c.NodeExtra = [][]string{{"--data-dir", filepath.Join(mnts[0], "node0")},
		{"--data-dir", filepath.Join(mnts[1], "node1")}, {"--data-dir", filepath.Join(mnts[2], "node2")}}
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*diskWaitMax)
	defer cancel()
	var kvs []*client.KVClient
	for i := range 3 {
		kvs = append(kvs, dialNode(t, c.Addr(i)))
	}
	if err := kvs[0].Set(ctx, "kept", "v"); err != nil {
		t.Fatal(err)
	}
	for _, mnt := range mnts {
		fills = append(fills, fillDisk(t, mnt, "fill"))
	}
	value := strings.Repeat("v", 64<<10)
	for i := range 3 {
		var err error
		for j := 0; j < 40 && err == nil; j++ { // past the log's reserved space
			err = kvs[i].Set(ctx, fmt.Sprintf("n%d-%d", i, j), value)
		}
		if !isCode(err, core.CodeDiskFull) || !strings.Contains(err.Error(), "no space left on device") {
			t.Fatalf("node %d: 2.5 MiB into a full disk: %v, want disk_full naming the disk's error", i, err)
		}
	}
	for i := range 3 {
		deadline := time.Now().Add(diskWaitMax)
		for {
			v, err := kvs[i].Get(ctx, "kept")
			if err == nil && v == "v" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d on its full disk: get kept: %q, %v", i, v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, fill := range fills {
		if err := os.Remove(fill); err != nil {
			t.Fatal(err)
		}
	}
	if err := kvs[1].Set(ctx, "room", "again"); err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
	for i := range 3 {
		deadline := time.Now().Add(diskWaitMax)
		for {
			v, err := kvs[i].Get(ctx, "room")
			if err == nil && v == "again" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lacks the write made once there was room: %q, %v", i, v, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// When every node's disk fills (replicas hold the same data, so equal
// disks fill together), the cluster still serves reads, and refuses
// writes with disk_full (found by review: every node ended a follower,
// and reads and writes were answered "unavailable: no leader known, and
// none can be elected now: this node has heard from 0 of its 2 peers",
// until space was freed; election's TestClusterWithEveryDiskFullServesReads).
func TestDiskFullOnEveryClusterNodeServesReads(t *testing.T) {
	var dirs [][]string
	for i := 0; i < 3; i++ {
		mnt := sizedTmpfs(t, "4m")
		dirs = append(dirs, []string{"--data-dir", filepath.Join(mnt, "node")})
	}
	t.Setenv(serverEnv, "1")
	c, err := nodeproc.NewCluster(os.Args[0], t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	c.NodeExtra = dirs
	t.Cleanup(func() {
		c.KillAll()
		if t.Failed() {
			t.Logf("node logs:\n%s", c.Logs())
		}
	})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := client.DialCluster(ctx, c.Addrs())
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if err := kv.Set(ctx, "kept", "v"); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", 100<<10)
	var last error
	for i := 0; i < 80 && last == nil; i++ {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		last = kv.Set(wctx, fmt.Sprint("k", i), value)
		wcancel()
	}
	if last == nil {
		t.Fatal("8 MB into three 4 MiB disks: every write acknowledged")
	}
	t.Logf("the write that did not fit: %v", last)
	time.Sleep(2 * time.Second) // past the leader's step-down, if any
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if v, err := kv.Get(rctx, "kept"); err != nil || v != "v" {
		t.Fatalf("a read with every disk full: %q, %v", v, err)
	}
	if err := kv.Set(rctx, "small", "v"); err == nil || !strings.Contains(err.Error(), "disk") {
		t.Fatalf("a write with every disk full: %v, want an error naming the disk", err)
	}
}

// Package clustertest runs 3-node dkv clusters of real cmd/node processes
// on loopback, SIGKILLs their nodes, and checks what clients were told
// against what the cluster holds. It has tests only.
//
// No assertion waits a fixed time: every wait polls the nodes' status or
// the client's progress until a generous deadline, so a slow or busy
// machine makes the tests slower, not red.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
	"dkv/internal/nodeproc"
)

// bin is cmd/node, built once for the package by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(nodeproc.WithBuild("dkv-clustertest-", func(b string) int { bin = b; return m.Run() }))
}

// waitMax bounds every wait for the cluster to do something it should do
// in well under a second: generous, so that only a real failure trips it.
const waitMax = 30 * time.Second

// startCluster starts 3 nodes and kills them when the test ends, printing
// their logs if it failed.
func startCluster(t *testing.T, extra ...string) *nodeproc.Cluster {
	t.Helper()
	c, err := nodeproc.NewCluster(bin, t.TempDir(), 3, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return startNodes(t, c)
}

// startNodes starts c's nodes and kills them when the test ends, printing
// their logs if it failed.
func startNodes(t *testing.T, c *nodeproc.Cluster) *nodeproc.Cluster {
	t.Helper()
	t.Cleanup(func() {
		c.KillAll()
		if t.Failed() {
			t.Logf("node logs:\n%s", c.Logs())
		}
	})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitLeader(t *testing.T, c *nodeproc.Cluster) (int, *nodeproc.NodeStatus) {
	t.Helper()
	i, st, err := c.WaitLeader(waitMax)
	if err != nil {
		t.Fatal(err)
	}
	return i, st
}

// waitNewLeader waits for a leader other than old.
func waitNewLeader(t *testing.T, c *nodeproc.Cluster, old int) (int, *nodeproc.NodeStatus) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		i, st := waitLeader(t, c)
		if i != old {
			return i, st
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d still leads after %v", old, waitMax)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitApplied waits until node i has applied index.
func waitApplied(t *testing.T, c *nodeproc.Cluster, i int, index uint64) *nodeproc.NodeStatus {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		st, err := c.Status(i, time.Second)
		if err == nil && st.Applied >= index {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d has not applied index %d after %v: %+v, %v", i, index, waitMax, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(t *testing.T, c *nodeproc.Cluster, i int) *nodeproc.NodeStatus {
	t.Helper()
	st, err := c.Status(i, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func dialCluster(t *testing.T, addrs []string, opts ...client.Option) *client.ClusterKVClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	defer cancel()
	kv, err := client.DialCluster(ctx, addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	return kv
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitMax)
	t.Cleanup(cancel)
	return ctx
}

// The seed's "cluster replication and election" case: a write on the
// leader is applied by every node; the leader is killed; another is
// elected; reads and writes go on through the cluster client.
func TestClusterReplicationAndElection(t *testing.T) {
	c := startCluster(t)
	waitLeader(t, c)
	ctx := ctxT(t)

	// Set on the leader (the cluster client finds it), then every node's
	// status says it applied the write.
	kv := dialCluster(t, c.Addrs())
	if err := kv.Set(ctx, "seed-key", "seed-value"); err != nil {
		t.Fatalf("set: %v", err)
	}
	lead := slices.Index(c.Addrs(), kv.Leader())
	if lead < 0 {
		t.Fatalf("the client follows %q, not one of %v", kv.Leader(), c.Addrs())
	}
	commit := status(t, c, lead).Commit
	for i := range c.Size() {
		st := waitApplied(t, c, i, commit)
		if st.Keys != 1 {
			t.Errorf("node %d: %d keys after applying index %d, want 1", i, st.Keys, commit)
		}
	}
	// A follower that knows the leader redirects to its client address.
	follower := (lead + 1) % c.Size()
	deadline := time.Now().Add(waitMax)
	for st := status(t, c, follower); st.Leader < 0 || st.Leader == follower; st = status(t, c, follower) {
		if time.Now().After(deadline) {
			t.Fatalf("node %d knows no other node as leader after %v: %+v", follower, waitMax, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fc, err := client.Dial(c.Addr(follower))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	var se *client.ServerError
	if err := fc.Set(ctx, "k", "v"); !errors.As(err, &se) || se.Code != core.CodeNotLeader || !slices.Contains(c.Addrs(), se.Leader) || se.Leader == c.Addr(follower) {
		t.Errorf("set on follower %d: %v; want not_leader naming another node's client address", follower, err)
	}

	// (On a busy machine an election may have moved the lead since:
	// whichever node the client last found leading is killed.)
	lead = slices.Index(c.Addrs(), kv.Leader())
	c.Kill(lead)
	newLead, _ := waitNewLeader(t, c, lead)
	t.Logf("node %d led; killed; node %d leads", lead, newLead)

	if v, err := kv.Get(ctx, "seed-key"); err != nil || v != "seed-value" {
		t.Fatalf("get through the cluster after the failover = %q, %v", v, err)
	}
	if err := kv.Set(ctx, "after", "failover"); err != nil {
		t.Fatalf("set after the failover: %v", err)
	}
	if v, err := kv.Get(ctx, "after"); err != nil || v != "failover" {
		t.Fatalf("get after the failover = %q, %v", v, err)
	}
	if err := kv.BulkSet(ctx, []client.KV{{Key: "b1", Value: "1"}, {Key: "b2", Value: "2"}}); err != nil {
		t.Fatalf("bulk_set after the failover: %v", err)
	}
	if err := kv.Delete(ctx, "after"); err != nil {
		t.Fatalf("delete after the failover: %v", err)
	}
	if _, err := kv.Get(ctx, "after"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after delete: %v, want not found", err)
	}
	if kv.Leader() == c.Addr(lead) {
		t.Errorf("the client still follows the killed leader %s", kv.Leader())
	}
}

// writeLoad runs writers that each Set keys of their own, in order,
// through shared cluster clients, and remembers what was acknowledged.
type writeLoad struct {
	mu      sync.Mutex
	acked   map[string]string
	unknown map[string]string
	failed  int
	firstOK map[int]time.Time // by epoch: the first acknowledgement after it began

	epoch atomic.Int64
	count atomic.Int64 // acknowledged writes
	stop  atomic.Bool
	wg    sync.WaitGroup
}

func startWriteLoad(t *testing.T, kvs []*client.ClusterKVClient, writers int) *writeLoad {
	w := &writeLoad{acked: map[string]string{}, unknown: map[string]string{}, firstOK: map[int]time.Time{}}
	for g := range writers {
		kv := kvs[g%len(kvs)]
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for n := 0; !w.stop.Load(); n++ {
				key, value := fmt.Sprintf("w%d-%05d", g, n), fmt.Sprintf("v%d.%d", g, n)
				epoch := int(w.epoch.Load())
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := kv.Set(ctx, key, value)
				cancel()
				w.mu.Lock()
				switch {
				case err == nil:
					w.acked[key] = value
					if _, ok := w.firstOK[epoch]; !ok {
						w.firstOK[epoch] = time.Now()
					}
					w.count.Add(1)
				case errors.Is(err, client.ErrUnknownOutcome):
					w.unknown[key] = value
				default:
					w.failed++
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// waitAcks waits until n more writes have been acknowledged.
func (w *writeLoad) waitAcks(t *testing.T, n int64) {
	t.Helper()
	target := w.count.Load() + n
	deadline := time.Now().Add(waitMax)
	for w.count.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d acknowledged writes after %v", w.count.Load(), target, waitMax)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *writeLoad) finish() {
	w.stop.Store(true)
	w.wg.Wait()
}

// SIGKILL of the leader under a write load: a new leader is elected, every
// acknowledged write is readable through it, and the old leader, restarted,
// catches up.
func TestClusterLeaderKilledUnderLoad(t *testing.T) {
	c := startCluster(t)
	lead, _ := waitLeader(t, c)
	kvs := []*client.ClusterKVClient{dialCluster(t, c.Addrs()), dialCluster(t, c.Addrs())}
	load := startWriteLoad(t, kvs, 8)
	defer load.finish()
	load.waitAcks(t, 300)

	killed := time.Now()
	load.epoch.Store(1)
	c.Kill(lead)
	load.waitAcks(t, 300)
	load.finish()
	newLead, _ := waitNewLeader(t, c, lead)
	load.mu.Lock()
	t.Logf("node %d killed; node %d leads; first write acknowledged %v after the kill; %d acknowledged, %d unknown, %d failed",
		lead, newLead, load.firstOK[1].Sub(killed).Round(time.Millisecond), len(load.acked), len(load.unknown), load.failed)
	load.mu.Unlock()

	// Every acknowledged write, through the new leader; a write of unknown
	// outcome is there or not, never with another value.
	reader := dialCluster(t, c.Addrs())
	checkKeys(t, reader, load.acked, load.unknown)

	// The old leader restarts and catches up with everything committed.
	if _, err := c.Start(lead); err != nil {
		t.Fatal(err)
	}
	leadNow, _ := waitLeader(t, c)
	waitApplied(t, c, lead, status(t, c, leadNow).Commit)
	sameState(t, c, lead)
}

// sameState waits until node i has applied what the leader has, and
// compares their key counts there.
func sameState(t *testing.T, c *nodeproc.Cluster, i int) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		l, lst := waitLeader(t, c)
		st := status(t, c, i)
		if st.Applied == lst.Applied {
			if st.Keys != lst.Keys {
				t.Errorf("node %d holds %d keys at applied %d; the leader, node %d, holds %d", i, st.Keys, st.Applied, l, lst.Keys)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d has applied %d, the leader, node %d, %d, after %v", i, st.Applied, l, lst.Applied, waitMax)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkKeys reads every key of acked (and unknown) through kv, with a few
// readers at once.
func checkKeys(t *testing.T, kv *client.ClusterKVClient, acked, unknown map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(acked)+len(unknown))
	for k := range acked {
		keys = append(keys, k)
	}
	for k := range unknown {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var mu sync.Mutex
	var bad []string
	var lost, present, absent int
	var wg sync.WaitGroup
	const readers = 8
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; i < len(keys); i += readers {
				k := keys[i]
				ctx, cancel := context.WithTimeout(context.Background(), waitMax)
				v, err := kv.Get(ctx, k)
				cancel()
				want, isAcked := acked[k]
				if !isAcked {
					want = unknown[k]
				}
				mu.Lock()
				switch {
				case err == nil && v == want:
					if !isAcked {
						present++
					}
				case errors.Is(err, client.ErrNotFound) && !isAcked:
					absent++
				case errors.Is(err, client.ErrNotFound):
					lost++
					if len(bad) < 10 {
						bad = append(bad, fmt.Sprintf("%s: acknowledged as %q, not found", k, want))
					}
				default:
					if len(bad) < 10 {
						bad = append(bad, fmt.Sprintf("%s: want %q, got %q, %v", k, want, v, err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("read back %d acknowledged writes; of %d of unknown outcome, %d applied and %d not", len(acked), len(unknown), present, absent)
	if len(bad) > 0 {
		t.Errorf("%d acknowledged writes lost; first bad keys:\n%s", lost, strings.Join(bad, "\n"))
	}
}

// A follower whose data directory is wiped restarts on an empty one (with
// no flag: it rejoins by itself), and catches up by snapshot transfer: the leader has compacted
// its log, so entries alone cannot bring it up to date. It votes again
// only once it has heard every peer and holds the committed log, and says
// so in its log. Then it holds every key: it is made the only node that
// can win an election, and every key is read through it.
func TestClusterWipedFollowerCatchesUpBySnapshot(t *testing.T) {
	// Snapshots every 64 KiB of log, in 16 KiB segments, so that the log
	// is compacted several times over. With indexes, which the wiped node
	// rebuilds from the snapshot it installs, in steps while it serves
	// however few the values (--index-inline-values 0).
	c := startCluster(t, "--snapshot-log-bytes", "65536", "--segment-bytes", "16384", "--enable-indexes", "--index-inline-values", "0")
	lead, _ := waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	ctx := ctxT(t)
	want := map[string]string{}
	write := func(from, to int) {
		t.Helper()
		for b := from; b < to; b += 100 {
			items := make([]client.KV, 0, 100)
			for i := b; i < min(b+100, to); i++ {
				k, v := fmt.Sprintf("key%05d", i), fmt.Sprintf("%05d %s", i, strings.Repeat("word ", 40))
				items = append(items, client.KV{Key: k, Value: v})
				want[k] = v
			}
			if err := kv.BulkSet(ctx, items); err != nil {
				t.Fatalf("bulk_set of keys %d..: %v", b, err)
			}
		}
	}
	write(0, 1000)

	wiped := (lead + 1) % c.Size()
	other := (lead + 2) % c.Size()
	// The node to wipe holds those writes first: had it acknowledged
	// none, the appends the leader queues for it while it is down would
	// start from the log's first entry, and bring it every entry when it
	// comes back, whatever the leader compacted meanwhile.
	_, first := waitLeader(t, c)
	waitApplied(t, c, wiped, first.Commit)
	// A wiped node may catch up from appends the leader had queued for it
	// before the kill (the transport keeps a peer's messages while it
	// reconnects), sent before the leader compacted its log: right, but
	// not the path this test is about. (Seen once in CI: the wiped node
	// took entries 1..21 while the leader's snapshot was at 16, and neither
	// logged a transfer.) Then it is wiped again: the leader has sent it
	// nothing from below its snapshot since, so it needs the snapshot.
	var lst *nodeproc.NodeStatus
	for attempt, from := 1, 1000; ; attempt, from = attempt+1, 10_000+1000*attempt {
		c.Kill(wiped)
		if err := os.RemoveAll(c.DataDir(wiped)); err != nil {
			t.Fatal(err)
		}
		// More writes while it is gone, so that the leader compacts the
		// log past anything the wiped node could be sent as entries.
		write(from, from+1000)
		// The leader snapshots in the background: wait until it has one,
		// so that the wiped node cannot be sent the log from its first
		// entry. (Under load it once had none yet, and the wiped node
		// caught up from entries. The status asked is the leader's own:
		// another node's snapshot, which a status through the cluster
		// client could report, once let the test go on while the leader
		// still had none.)
		for deadline := time.Now().Add(waitMax); ; time.Sleep(20 * time.Millisecond) {
			var l int
			l, lst = waitLeader(t, c)
			if st, err := c.Status(l, 5*time.Second); err == nil && st.Role == "leader" && st.SnapshotIndex > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the leader took no snapshot after %d writes in %v: %+v", len(want), waitMax, lst)
			}
		}
		// On the empty directory, with no flag: it rejoins by itself.
		if _, err := c.Start(wiped); err != nil {
			t.Fatal(err)
		}
		// Its status says it rejoins, unless it is done already (then its
		// log says so).
		if st := status(t, c, wiped); !st.Rejoining && !strings.Contains(c.Process(wiped).Stderr(), "rejoined: heard every peer") {
			t.Errorf("wiped node %d, just started on an empty directory: status %+v does not say it rejoins, and it has not rejoined", wiped, st)
		}
		st := waitApplied(t, c, wiped, lst.Commit)
		if st.Keys != len(want) {
			t.Errorf("wiped node %d holds %d keys at applied %d, want %d", wiped, st.Keys, st.Applied, len(want))
		}
		log := c.Process(wiped).Stderr()
		if !strings.Contains(log, "started on an empty data directory: no vote and no election until every other node has answered") {
			t.Errorf("wiped node %d did not say it was rejoining; its log:\n%s", wiped, log)
		}
		if strings.Contains(log, "installed the leader's snapshot") {
			break
		}
		if attempt == 3 {
			t.Fatalf("wiped node %d caught up without installing a snapshot, three times; its log:\n%s", wiped, log)
		}
		t.Logf("attempt %d: wiped node %d caught up from entries the leader had queued for it, without a snapshot; wiping it again", attempt, wiped)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.Process(wiped).Stderr(), "rejoined: heard every peer"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("wiped node %d caught up but is still rejoining after 10 s; its log:\n%s", wiped, c.Process(wiped).Stderr())
		}
	}
	if st := status(t, c, wiped); st.Rejoining {
		t.Errorf("wiped node %d logged that it rejoined, and its status says it still rejoins: %+v", wiped, st)
	}

	// Make the wiped node the only one that can win: with one other node
	// down, write on (the wiped node and the third commit it), then kill
	// the third and bring the first back. Its log is behind the wiped
	// node's, so it cannot get the wiped node's vote, and the wiped node
	// gets its. (Whichever of the two led does not matter.)
	c.Kill(other)
	write(2000, 2100)
	c.Kill(lead)
	if _, err := c.Start(other); err != nil {
		t.Fatal(err)
	}
	if newLead, _ := waitLeader(t, c); newLead != wiped {
		t.Fatalf("node %d leads, want the wiped node %d (its log is the longest of the two alive)", newLead, wiped)
	}
	checkKeys(t, kv, want, nil)
	// Its indexes hold what the snapshot and the entries after it brought:
	// each value's number finds its key alone.
	for _, i := range []int{0, 999, 1000, 1999, 2000, 2099} {
		hits, err := kv.Search(ctx, fmt.Sprintf("%05d", i))
		if err != nil || len(hits) != 1 || hits[0].Key != fmt.Sprintf("key%05d", i) {
			t.Errorf("search %05d on the wiped node, now leading: %v, %v; want key%05d alone", i, hits, err, i)
		}
	}
}

// A minority side never acknowledges a write: with two nodes killed, a
// write to the survivor fails (outcome_unknown once it gives up on the
// majority, or unavailable once it knows it no longer leads) within the
// request timeout.
func TestClusterMinorityNeverAcknowledges(t *testing.T) {
	c := startCluster(t)
	lead, _ := waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	ctx := ctxT(t)
	if err := kv.Set(ctx, "before", "majority"); err != nil {
		t.Fatal(err)
	}
	// The leader survives, alone: it may not yet know that it lost the
	// majority, and takes the write, which must never be acknowledged.
	for i := range c.Size() {
		if i != lead {
			c.Kill(i)
		}
	}
	const requestTimeout = 10 * time.Second // the client's default
	direct, err := client.Dial(c.Addr(lead), client.WithRequestTimeout(requestTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	for _, key := range []string{"minority-1", "minority-2"} {
		began := time.Now()
		err := direct.Set(context.Background(), key, "never")
		took := time.Since(began)
		var se *client.ServerError
		switch {
		case err == nil:
			t.Fatalf("a write to the survivor alone was acknowledged")
		case errors.Is(err, client.ErrUnknownOutcome) || errors.As(err, &se) && (se.Code == core.CodeUnavailable || se.Code == core.CodeNotLeader):
			// The node answers outcome_unknown after WriteTicksMax (5 s)
			// of ticks; on a very busy machine the client's timeout may
			// come first, which is an unknown outcome too.
			t.Logf("%s: %v after %v", key, err, took.Round(time.Millisecond))
		default:
			t.Fatalf("%s: %v after %v; want outcome unknown, unavailable or not_leader within %v", key, err, took, requestTimeout)
		}
		if took > requestTimeout+time.Second {
			t.Errorf("%s: failed after %v, past the request timeout %v", key, took, requestTimeout)
		}
	}
	// The cluster client gives up too, and says why.
	began := time.Now()
	cctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	err = kv.Set(cctx, "minority-3", "never")
	t.Logf("cluster client: %v after %v", err, time.Since(began).Round(time.Millisecond))
	if err == nil {
		t.Fatalf("the cluster client got a write acknowledged by a minority")
	}
}

// Package meshtest runs 3-node master-less meshes of real cmd/node
// processes on loopback, SIGKILLs and wipes their nodes, and checks that
// every node ends up holding the same contents, with every acknowledged
// write in it. It has tests only.
//
// Convergence is by anti-entropy, so no assertion waits a fixed time:
// every check polls every key on every node until it holds or a generous
// deadline passes, so a slow or busy machine makes the tests slower, not
// red.
package meshtest

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
	os.Exit(nodeproc.WithBuild("dkv-meshtest-", func(b string) int { bin = b; return m.Run() }))
}

// waitMax bounds every wait for the mesh to converge: anti-entropy rounds
// come every --anti-entropy-interval (fast here), so convergence takes a
// few of them; the rest is room for a busy machine.
const waitMax = 30 * time.Second

// fastAE makes anti-entropy rounds frequent, so that a test waits for
// convergence a fraction of a second rather than seconds.
var fastAE = []string{"--anti-entropy-interval", "100ms"}

// startMesh starts 3 mesh nodes and kills them when the test ends,
// printing their logs if it failed.
func startMesh(t *testing.T, extra ...string) *nodeproc.Cluster {
	t.Helper()
	c, err := nodeproc.NewMesh(bin, t.TempDir(), 3, extra...)
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

func dial(t *testing.T, addr string) *client.KVClient {
	t.Helper()
	kv, err := client.Dial(addr)
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

// ledger is what clients were told, per key: the last acknowledged write
// (a value, or a delete) and the writes after it whose outcome is unknown.
// Every key is written by one client at a time, to one node at a time, so
// a later write carries a higher stamp and the last acknowledged one (or a
// later one of unknown outcome) is what every node must end up with.
type ledger struct {
	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	acked     *string // nil: deleted, or never acknowledged (see known)
	known     bool    // some write was acknowledged
	uncertain []*string
}

func newLedger() *ledger { return &ledger{keys: map[string]*keyState{}} }

// setKeys sets n keys, named by keyFormat and their number, to "v" and
// their number through kv, noting each in l; a failed set fails the test.
// It returns the keys.
func setKeys(ctx context.Context, t *testing.T, kv *client.KVClient, l *ledger, keyFormat string, n int) []string {
	t.Helper()
	keys := make([]string, 0, n)
	for i := range n {
		k, v := fmt.Sprintf(keyFormat, i), fmt.Sprintf("v%d", i)
		err := kv.Set(ctx, k, v)
		l.record(k, &v, err)
		if err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
		keys = append(keys, k)
	}
	return keys
}

func (l *ledger) state(key string) *keyState {
	st := l.keys[key]
	if st == nil {
		st = &keyState{}
		l.keys[key] = st
	}
	return st
}

// record notes the outcome of a write of value (nil: a delete) to key.
func (l *ledger) record(key string, value *string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(key)
	switch {
	case err == nil:
		st.acked, st.known, st.uncertain = value, true, nil
	case errors.Is(err, client.ErrUnknownOutcome) || isConnErr(err):
		st.uncertain = append(st.uncertain, value)
	}
	// A write refused outright (a server error) changed nothing.
}

// isConnErr tells a write that may have reached the node (its connection
// broke: the node was killed) from one that was refused.
func isConnErr(err error) bool {
	var se *client.ServerError
	return err != nil && !errors.As(err, &se)
}

// allows reports whether a node may end with value (nil: no such key).
func (st *keyState) allows(value *string) bool {
	same := func(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	if same(value, st.acked) {
		return true
	}
	for _, u := range st.uncertain {
		if same(value, u) {
			return true
		}
	}
	return false
}

func (l *ledger) keyList() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readAll reads every key from the node at addr, a few readers at once:
// the value, or nil if the node has no such key.
func readAll(ctx context.Context, addr string, keys []string) (map[string]*string, error) {
	kv, err := client.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer kv.Close()
	out := make([]*string, len(keys))
	const readers = 8
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; i < len(keys); i += readers {
				v, err := kv.Get(ctx, keys[i])
				switch {
				case err == nil:
					out[i] = &v
				case errors.Is(err, client.ErrNotFound):
				default:
					errs[r] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := make(map[string]*string, len(keys))
	for i, k := range keys {
		m[k] = out[i]
	}
	return m, nil
}

func show(v *string) string {
	if v == nil {
		return "(none)"
	}
	return fmt.Sprintf("%q", *v)
}

// divergence reads every key of the ledger from every running node and
// describes the first few keys on which the nodes disagree, or hold what
// no client was told; empty when every node holds the same allowed value.
func divergence(ctx context.Context, c *nodeproc.Cluster, l *ledger) (string, error) {
	keys := l.keyList()
	var views []map[string]*string
	var nodes []int
	for i := range c.Size() {
		if c.Node(i) == nil {
			continue
		}
		m, err := readAll(ctx, c.Addr(i), keys)
		if err != nil {
			return "", fmt.Errorf("reading node %d: %w", i, err)
		}
		views, nodes = append(views, m), append(nodes, i)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	bad := 0
	for _, k := range keys {
		st := l.keys[k]
		ok := true
		for _, v := range views {
			if !st.allows(v[k]) || show(v[k]) != show(views[0][k]) {
				ok = false
			}
		}
		if ok {
			continue
		}
		if bad++; bad <= 5 {
			fmt.Fprintf(&b, "\n  key %q: acknowledged %s (known %v), uncertain %d;", k, show(st.acked), st.known, len(st.uncertain))
			for j, v := range views {
				fmt.Fprintf(&b, " node %d: %s", nodes[j], show(v[k]))
			}
		}
	}
	if bad > 0 {
		return fmt.Sprintf("%d of %d keys differ:%s", bad, len(keys), b.String()), nil
	}
	return "", nil
}

// passesToConverge is how many complete anti-entropy passes, of every
// running node with every running peer, the mesh gets to converge before a
// test gives up on it. One is enough by the protocol's claim (a pass offers
// everything the node held when it began, and pulls what the peer holds
// that it lacks): three leave room for writes that were still in flight.
const passesToConverge = 3

// waitConverged polls every key on every running node until all of them
// hold the same value for it, one the ledger allows. It fails once every
// node has made passesToConverge anti-entropy passes with every peer since
// it began without the mesh converging (and at least convergeMin has
// passed), or after waitMax: a mesh that stops repairing fails in seconds,
// not at the deadline.
func waitConverged(t *testing.T, c *nodeproc.Cluster, l *ledger) {
	t.Helper()
	ctx := ctxT(t)
	start := time.Now()
	deadline := start.Add(waitMax)
	const convergeMin = 3 * time.Second
	var marks [][]*nodeproc.MeshStatus // statuses after each round of passes
	first, err := c.WaitMeshPasses(nil, 0)
	_ = err // a down or busy node: fewer passes known, a longer wait
	marks = append(marks, first)
	for {
		diff, err := divergence(ctx, c, l)
		if err == nil && diff == "" {
			t.Logf("%d keys the same on every running node after %v", len(l.keyList()), time.Since(start).Round(time.Millisecond))
			return
		}
		if sts, perr := c.WaitMeshPasses(marks[len(marks)-1], 0); perr == nil {
			marks = append(marks, sts)
		}
		passes := len(marks) - 1
		if passes >= passesToConverge && time.Since(start) >= convergeMin {
			t.Fatalf("not converged after %d anti-entropy passes of every node with every peer (%v): %v%s",
				passes, time.Since(start).Round(time.Millisecond), err, diff)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged after %v (%d passes): %v%s", waitMax, passes, err, diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writer writes keys of its own through one node, in order, and records
// every outcome; it stops at stop, or when its node is gone for good.
type writer struct {
	acks atomic.Int64
	wg   sync.WaitGroup
	stop atomic.Bool
}

// startWriters runs per node n writers, each over its own keys
// ("<prefix>-<node>-<writer>-<seq>"), which also delete a key now and
// then and rewrite an earlier one, so that the nodes get overwrites and
// tombstones as well as new keys. A writer whose node dies stops.
func startWriters(t *testing.T, c *nodeproc.Cluster, l *ledger, prefix string, n int, nodes ...int) *writer {
	w := &writer{}
	for _, node := range nodes {
		for g := range n {
			kv := dial(t, c.Addr(node))
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				key := func(i int) string { return fmt.Sprintf("%s-%d-%d-%05d", prefix, node, g, i) }
				for i := 0; !w.stop.Load(); i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					var err error
					var k string
					var v *string
					switch {
					case i%10 == 9: // delete an earlier key
						k = key(i - 5)
						err = kv.Delete(ctx, k)
					case i%10 == 7: // overwrite an earlier key
						k = key(i - 3)
						s := fmt.Sprintf("v%d-again", i)
						v = &s
						err = kv.Set(ctx, k, s)
					default:
						k = key(i)
						s := fmt.Sprintf("v%d", i)
						v = &s
						err = kv.Set(ctx, k, s)
					}
					cancel()
					l.record(k, v, err)
					if err == nil {
						w.acks.Add(1)
						continue
					}
					if isConnErr(err) {
						return // the node is gone
					}
				}
			}()
		}
	}
	return w
}

// waitAcks waits until the writers have had n more writes acknowledged.
func (w *writer) waitAcks(t *testing.T, n int64) {
	t.Helper()
	target := w.acks.Load() + n
	deadline := time.Now().Add(waitMax)
	for w.acks.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d acknowledged writes after %v", w.acks.Load(), target, waitMax)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *writer) finish() {
	w.stop.Store(true)
	w.wg.Wait()
}

// The real-process test: writes go to every node; one node is
// SIGKILLed while the other two go on taking writes; it restarts; every
// node ends up with the same contents, every acknowledged write among
// them (those the killed node acknowledged just before it died included).
func TestWritesToEveryNodeConvergeAcrossAKill(t *testing.T) {
	c := startMesh(t, fastAE...)
	l := newLedger()
	w := startWriters(t, c, l, "a", 2, 0, 1, 2)
	w.waitAcks(t, 600)

	// Node 2 dies mid-write; nodes 0 and 1 take writes meanwhile.
	c.Kill(2)
	w.waitAcks(t, 600)
	w.finish()
	w = startWriters(t, c, l, "b", 2, 0, 1)
	w.waitAcks(t, 300)

	// Back again: it holds what it acknowledged, gets what it missed, and
	// takes writes again while the others still do.
	if _, err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	w2 := startWriters(t, c, l, "c", 2, 2)
	w2.waitAcks(t, 200)
	w.finish()
	w2.finish()
	waitConverged(t, c, l)
	for i := range c.Size() {
		st, err := c.MeshStatus(i, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("node %d: %d keys, %d tombstones, peers %+v", i, st.Keys, st.Tombstones, st.Peers)
	}
}

// A client's second write to a key wins over its first, whichever node
// takes each: the write carries the first's stamp as its after.
func TestLaterWriteThroughAnotherNodeWins(t *testing.T) {
	c := startMesh(t, fastAE...)
	ctx := ctxT(t)
	kvs := []*client.KVClient{dial(t, c.Addr(0)), dial(t, c.Addr(1)), dial(t, c.Addr(2))}
	l := newLedger()
	after := ""
	for i := range 30 {
		v := fmt.Sprintf("v%d", i)
		resp, err := kvs[i%3].Do(ctx, &core.Request{Op: core.OpSet, Key: "k", Value: &v, After: after})
		if err != nil {
			t.Fatalf("write %d through node %d: %v", i, i%3, err)
		}
		if resp.Stamp == "" {
			t.Fatalf("write %d through node %d: no stamp in %+v", i, i%3, resp)
		}
		after = resp.Stamp
		l.record("k", &v, nil)
	}
	waitConverged(t, c, l)
}

// A node whose data directory is lost (killed, directory removed,
// restarted empty) gets everything back from its peers.
func TestWipedNodeRebuildsFromPeers(t *testing.T) {
	c := startMesh(t, fastAE...)
	ctx := ctxT(t)
	l := newLedger()
	w := startWriters(t, c, l, "a", 2, 0, 1, 2)
	w.waitAcks(t, 1500)
	w.finish()
	// A bulk set, applied on each replica as a whole.
	var items []client.KV
	for i := range 500 {
		items = append(items, client.KV{Key: fmt.Sprintf("bulk-%04d", i), Value: fmt.Sprintf("b%d", i)})
	}
	err := dial(t, c.Addr(1)).BulkSet(ctx, items)
	for _, it := range items {
		l.record(it.Key, &it.Value, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, l)
	// Let anti-entropy go round a few times, so that the horizon (which
	// collects tombstones and refuses old writes for absent keys) moves
	// past these writes: the wiped node must still take them back.
	before, err := c.WaitMeshPasses(nil, waitMax)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitMeshPasses(before, waitMax); err != nil {
		t.Fatal(err)
	}

	c.Kill(0)
	if err := os.RemoveAll(c.DataDir(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	st, err := c.MeshStatus(0, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node 0 restarted empty: %d keys", st.Keys)
	waitConverged(t, c, l)
}

// collectRounds is how many rounds of complete anti-entropy passes, of
// every node with every peer, a test lets a mesh take to collect the
// tombstones every node holds: about three are needed (see
// TestDeleteIsNotResurrected); the rest is room for rounds that began
// before the tombstones were everywhere.
const collectRounds = 8

// A delete on one node is never undone by a node that missed it: node 1
// is down while node 0 deletes keys, comes back holding their old values,
// and the tombstones win; once every node holds them they are collected,
// and a later kill and restart of node 1 brings nothing back either.
func TestDeleteIsNotResurrected(t *testing.T) {
	c := startMesh(t, fastAE...)
	ctx := ctxT(t)
	l := newLedger()
	kv0 := dial(t, c.Addr(0))
	keys := setKeys(ctx, t, kv0, l, "doomed-%03d", 200)
	waitConverged(t, c, l)

	c.Kill(1)
	kv2 := dial(t, c.Addr(2))
	for i, k := range keys {
		kv := kv0
		if i%2 == 1 {
			kv = kv2 // deletes through both live nodes
		}
		err := kv.Delete(ctx, k)
		l.record(k, nil, err)
		if err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, c, l)
	if _, err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, l)

	// Tombstones go once every node holds them: within a few rounds of
	// anti-entropy passes (a restarted node's passes count once it has
	// completed one with every peer, its stability point follows the
	// next, and the horizon the one after). Wait for that, then kill node 1
	// again and check that nothing came back. (This used to log and go on
	// when the tombstones stayed, so a mesh that never collected passed.)
	deadline := time.Now().Add(waitMax)
	var marks []*nodeproc.MeshStatus
	for rounds := 0; ; {
		var tombs []int
		for i := range c.Size() {
			st, err := c.MeshStatus(i, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			tombs = append(tombs, st.Tombstones)
		}
		if slices.Max(tombs) == 0 {
			break
		}
		if sts, err := c.WaitMeshPasses(marks, 0); err == nil {
			marks = sts
			rounds++
		}
		if rounds > collectRounds || time.Now().After(deadline) {
			t.Fatalf("tombstones still held after %d rounds of anti-entropy passes of every node with every peer: %v", rounds, tombs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Kill(1)
	if _, err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	before, err := c.WaitMeshPasses(nil, waitMax)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitMeshPasses(before, waitMax); err != nil {
		t.Fatal(err)
	}
	if diff, err := divergence(ctx, c, l); err != nil || diff != "" {
		t.Fatalf("after a restart of node 1: %v %s", err, diff)
	}
}

// --write-quorum 3: a write is acknowledged once every node holds it; with
// two nodes down it cannot be, and is answered outcome_unknown within the
// quorum timeout (2 s); it is durable where it was taken, and reaches the
// others when they are back.
func TestWriteQuorumOfThree(t *testing.T) {
	c := startMesh(t, append([]string{"--write-quorum", "3"}, fastAE...)...)
	ctx := ctxT(t)
	l := newLedger()
	kv := dial(t, c.Addr(0))
	setKeys(ctx, t, kv, l, "q-%02d", 50)
	// Acknowledged with a quorum of 3: on every node already, no waiting.
	for i := range c.Size() {
		got, err := readAll(ctx, c.Addr(i), l.keyList())
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range got {
			if v == nil {
				t.Errorf("node %d lacks %q right after its quorum-3 write was acknowledged", i, k)
			}
		}
	}

	// With one node down, a write that asks for 2 is acknowledged.
	c.Kill(2)
	two := "two"
	if _, err := kv.Do(ctx, &core.Request{Op: core.OpSet, Key: "q-two", Value: &two, Quorum: 2}); err != nil {
		t.Fatalf("set with quorum 2 while one node is down: %v", err)
	}
	l.record("q-two", &two, nil)
	c.Kill(1)
	v := "lonely"
	began := time.Now()
	err := kv.Set(ctx, "q-lonely", v)
	took := time.Since(began)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != core.CodeOutcomeUnknown || !errors.Is(err, client.ErrUnknownOutcome) {
		t.Fatalf("set with two of three nodes down: %v; want outcome_unknown", err)
	}
	if took > 5*time.Second {
		t.Errorf("outcome_unknown after %v; the quorum timeout is 2 s", took)
	}
	t.Logf("with two nodes down: %v after %v", err, took.Round(time.Millisecond))
	// A request may ask for less than the node's default.
	one := "one"
	if _, err := kv.Do(ctx, &core.Request{Op: core.OpSet, Key: "q-one", Value: &one, Quorum: 1}); err != nil {
		t.Fatalf("set with quorum 1 while two nodes are down: %v", err)
	}
	l.record("q-one", &one, nil)
	// The unknown write is durable on node 0 (it answered outcome_unknown
	// only after its own fsync): once the others are back, all hold it.
	l.record("q-lonely", &v, nil)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, l)
}

// Bad input gets a clear error: a second process on a data directory in
// use, a mesh node's data directory started as a single or cluster node,
// and a single node's data directory started as a mesh node; a refused
// directory is left as it was.
func TestMeshRefusesBadDataDirectories(t *testing.T) {
	c := startMesh(t)
	// A second process on node 0's directory, on other ports.
	ports, err := nodeproc.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	args := c.Args(0)
	args[slices.Index(args, "--kv-port")+1] = fmt.Sprint(ports[0])
	args[slices.Index(args, "--repl-port")+1] = fmt.Sprint(ports[1])
	p, err := nodeproc.Launch(bin, c.DataDir(0), ports[0], args...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(waitMax); err == nil || !strings.Contains(p.Stderr(), "in use by another dkv process") {
		t.Errorf("a second process on node 0's data directory: %v, stderr:\n%s", err, p.Stderr())
	}

	// Node 2's directory, with a write in its log, refused by a single
	// node and by a cluster node.
	if err := dial(t, c.Addr(2)).Set(ctxT(t), "k", "mesh"); err != nil {
		t.Fatal(err)
	}
	c.Kill(2)
	cl, err := nodeproc.NewCluster(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []struct {
		name string
		args []string
		says string // what the refusal names the directory as
	}{
		{"a single node", nil, "it is a mesh node's"},
		{"a cluster node", cl.Args(0), "it is a mesh node's"},
	} {
		p, err := nodeproc.Launch(bin, c.DataDir(2), cl.KVPorts[0], append(other.args, "--data-dir", c.DataDir(2))...)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Wait(waitMax)
		if err == nil || strings.Contains(p.Stderr(), "serving") || !strings.Contains(p.Stderr(), "written by another kind of node") || !strings.Contains(p.Stderr(), other.says) {
			t.Errorf("a mesh node's data directory as %s: %v, stderr:\n%s", other.name, err, p.Stderr())
		}
	}
	// Node 2's directory, with node 2's flags but another replication
	// port: another mesh id, so refused, with the hint of what to do.
	free, err := nodeproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	args = c.Args(2)
	args[slices.Index(args, "--repl-port")+1] = fmt.Sprint(free[0])
	p, err = nodeproc.Launch(bin, c.DataDir(2), c.KVPorts[2], args...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(waitMax); err == nil || !strings.Contains(p.Stderr(), "the data directory belongs to node 2 of mesh") ||
		!strings.Contains(p.Stderr(), "start every node with --mesh-id set to the id the data directory names") {
		t.Errorf("node 2 on its directory with another replication port: %v; want the refusal and the hint; stderr:\n%s", err, p.Stderr())
	}
	// Still node 2's: it starts on it, with its key.
	if _, err := c.Start(2); err != nil {
		t.Fatalf("node 2 does not start on its directory after the refusals: %v", err)
	}
	if v, err := dial(t, c.Addr(2)).Get(ctxT(t), "k"); err != nil || v != "mesh" {
		t.Errorf("node 2's key after the refusals: %q, %v", v, err)
	}

	// A single node's directory, with a write in its log, as node 1 of a
	// new mesh: refused, naming what it holds; and the directory is left
	// as it was, so that the single node still starts on it.
	single := t.TempDir()
	sp, err := nodeproc.Start(bin, single)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(t, sp.Addr).Set(ctxT(t), "k", "single"); err != nil {
		t.Fatal(err)
	}
	if err := sp.Stop(waitMax); err != nil {
		t.Fatal(err)
	}
	m, err := nodeproc.NewMesh(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	args = m.Args(1)
	args[slices.Index(args, "--data-dir")+1] = single
	p, err = nodeproc.Launch(bin, single, m.KVPorts[1], args...)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait(waitMax)
	if err == nil || p.Exited() && strings.Contains(p.Stderr(), "serving") || !strings.Contains(p.Stderr(), "not a mesh node's") {
		t.Errorf("a single node's data directory in mesh mode: %v, stderr:\n%s", err, p.Stderr())
	}
	sp, err = nodeproc.Start(bin, single)
	if err != nil {
		t.Fatalf("the single node does not start on its directory after the refusal: %v", err)
	}
	defer sp.Kill()
	if v, err := dial(t, sp.Addr).Get(ctxT(t), "k"); err != nil || v != "single" {
		t.Errorf("the single node's key after the refusal: %q, %v", v, err)
	}
}

// A client's after-stamp beyond --max-offset of the node's clock is
// refused as unavailable (a node whose clock ran ahead stamped it: retry
// later or elsewhere), with a message that says so, and the node's clock
// is not dragged ahead by it: a write after it is stamped near the
// present. A malformed one is a bad request.
func TestAfterStampBeyondMaxOffsetRefused(t *testing.T) {
	c := startMesh(t, "--max-offset", "1s")
	ctx := ctxT(t)
	kv := dial(t, c.Addr(0))
	v := "v"
	future := fmt.Sprintf("%d.0.1", time.Now().Add(time.Hour).UnixNano())
	_, err := kv.Do(ctx, &core.Request{Op: core.OpSet, Key: "k", Value: &v, After: future})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != core.CodeUnavailable || !strings.Contains(se.Message, "max offset") {
		t.Errorf("set after a stamp an hour ahead: %v; want unavailable naming the max offset", err)
	}
	_, err = kv.Do(ctx, &core.Request{Op: core.OpSet, Key: "k", Value: &v, After: "not-a-stamp"})
	if !errors.As(err, &se) || se.Code != core.CodeBadRequest {
		t.Errorf("set after a malformed stamp: %v; want bad_request", err)
	}
	// Within the offset: taken, and stamped above it.
	near := fmt.Sprintf("%d.0.1", time.Now().Add(300*time.Millisecond).UnixNano())
	resp, err := kv.Do(ctx, &core.Request{Op: core.OpSet, Key: "k", Value: &v, After: near})
	if err != nil {
		t.Fatalf("set after a stamp 300 ms ahead, within --max-offset 1s: %v", err)
	}
	var wall, nearWall int64
	fmt.Sscanf(resp.Stamp, "%d.", &wall)
	fmt.Sscanf(near, "%d.", &nearWall)
	if wall < nearWall || wall > time.Now().Add(2*time.Second).UnixNano() {
		t.Errorf("stamp %s after %s: want at or above it, and not far in the future", resp.Stamp, near)
	}
}

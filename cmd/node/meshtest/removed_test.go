package meshtest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// tombstones is each running node's tombstone count, -1 for one down.
func tombstones(t *testing.T, c *nodeproc.Cluster) []int {
	t.Helper()
	out := make([]int, c.Size())
	for i := range out {
		out[i] = -1
		if c.Node(i) == nil {
			continue
		}
		st, err := c.MeshStatus(i, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = st.Tombstones
	}
	return out
}

// passes waits for two rounds of anti-entropy passes of every running
// node with every running peer: what any of them held is then on all.
func passes(t *testing.T, c *nodeproc.Cluster) {
	t.Helper()
	before, err := c.WaitMeshPasses(nil, waitMax)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitMeshPasses(before, waitMax); err != nil {
		t.Fatal(err)
	}
}

// The procedure of docs/OPERATIONS.md, "Removing a mesh node for good":
// node 2 is SIGKILLed for good after deletes; its tombstones stay on the
// two others, which restarted with --removed-nodes 2 one after the other
// collect nothing until both are, and then every tombstone. Node 2 started
// again on its old directory, with its old flags, is told it was removed
// and exits, saying to empty the directory; started again, it is refused
// at once; and nothing it held comes back to the others.
func TestRemovedMeshNodeLetsTombstonesGo(t *testing.T) {
	c := startMesh(t, fastAE...)
	ctx := ctxT(t)
	l := newLedger()
	kv0 := dial(t, c.Addr(0))
	keys := setKeys(ctx, t, kv0, l, "k-%02d", 40)
	waitConverged(t, c, l)

	c.Kill(2)
	kv1 := dial(t, c.Addr(1))
	for i, k := range keys[:20] {
		kv := kv0
		if i%2 == 1 {
			kv = kv1
		}
		err := kv.Delete(ctx, k)
		l.record(k, nil, err)
		if err != nil {
			t.Fatal(err)
		}
	}
	waitConverged(t, c, l)
	passes(t, c)
	if got := tombstones(t, c); got[0] != 20 || got[1] != 20 {
		t.Fatalf("tombstones with node 2 dead and listed: %v; want 20 on nodes 0 and 1 (none collected)", got)
	}

	// Node 0 without node 2, node 1 still listing it: nothing collected.
	removed := []string{"--removed-nodes", "2"}
	c.NodeExtra = [][]string{removed, nil, nil}
	c.Kill(0)
	if _, err := c.Start(0); err != nil {
		t.Fatal(err)
	}
	passes(t, c)
	if got := tombstones(t, c); got[0] != 20 || got[1] != 20 {
		t.Errorf("tombstones with node 0 restarted without node 2, node 1 not: %v; want 20 on both (node 1 still counts node 2)", got)
	}
	for i, want := range [][]int{{2}, nil} {
		st, err := c.MeshStatus(i, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Removed, want) {
			t.Errorf("node %d's status lists %v as removed, want %v", i, st.Removed, want)
		}
	}

	// Node 1 without it too: every tombstone goes.
	c.NodeExtra[1] = removed
	c.Kill(1)
	if _, err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitMax)
	for got := tombstones(t, c); got[0] != 0 || got[1] != 0; got = tombstones(t, c) {
		if time.Now().After(deadline) {
			t.Fatalf("tombstones %v after %v with both remaining nodes restarted without node 2; want 0", got, waitMax)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if diff, err := divergence(ctx, c, l); err != nil || diff != "" {
		t.Fatalf("after the collection: %v %s", err, diff)
	}

	// Node 2 on its old directory, with its old flags: told, it exits.
	p, err := c.Launch(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(waitMax); err == nil || !strings.Contains(p.Stderr(), "removed from its mesh for good") || !strings.Contains(p.Stderr(), "empty the data directory") {
		t.Errorf("node 2 on its old directory: %v; want it to exit, told it was removed and to empty the directory; stderr:\n%s", err, p.Stderr())
	}
	// Started again, refused before it serves.
	p, err = c.Launch(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(waitMax); err == nil || strings.Contains(p.Stderr(), "serving") || !strings.Contains(p.Stderr(), "removed from its mesh for good") {
		t.Errorf("node 2 started again on its old directory: %v; want it refused at start; stderr:\n%s", err, p.Stderr())
	}
	passes(t, c)
	if diff, err := divergence(ctx, c, l); err != nil || diff != "" {
		t.Fatalf("after node 2 came back: %v %s", err, diff)
	}
}

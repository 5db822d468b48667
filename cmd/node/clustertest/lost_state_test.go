package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A follower whose raft-state file (its term and vote) is gone while its
// log stays is refused at start, as election takes such a directory for a
// single node's; the hint says what to do if it is the cluster node's own,
// and doing that (the directory moved aside, the node started on an empty one)
// brings the node back with every acknowledged write. The refusal alone
// told its operator that a cluster node's directory was a single node's.
func TestFollowerWithoutRaftStateIsToldToRejoin(t *testing.T) {
	c := startCluster(t)
	lead, _ := waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	ctx := ctxT(t)
	for i := range 20 {
		if err := kv.Set(ctx, fmt.Sprintf("k%02d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	f := (lead + 1) % c.Size()
	_, st := waitLeader(t, c)
	waitApplied(t, c, f, st.Commit)
	c.Kill(f)
	if err := os.Remove(filepath.Join(c.DataDir(f), "raft-state")); err != nil {
		t.Fatal(err)
	}
	p, err := c.Launch(f)
	if err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, p)
	stderr := p.Stderr()
	if code != 1 || !strings.Contains(stderr, "holds a log but no raft-state") {
		t.Fatalf("node %d without its raft-state: exit %d; want 1 and the refusal; stderr:\n%s", f, code, stderr)
	}
	if !strings.Contains(stderr, "start the node on an empty one; it catches up from the leader before it votes") {
		t.Fatalf("the refusal gives no way on for a cluster node's own directory; stderr:\n%s", stderr)
	}

	// The way the hint gives.
	if err := os.Rename(c.DataDir(f), c.DataDir(f)+".aside"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(f); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c.Process(f), "rejoined: heard every peer")
	if err := kv.Set(ctx, "after", "rejoin"); err != nil {
		t.Fatal(err)
	}
	_, st = waitLeader(t, c)
	waitApplied(t, c, f, st.Commit)
	// The rejoined node's own store holds every key.
	if got := status(t, c, f); got.Keys != 21 {
		t.Errorf("node %d holds %d keys after rejoining; want 21", f, got.Keys)
	}
}

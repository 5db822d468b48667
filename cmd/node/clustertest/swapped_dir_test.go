package clustertest

import (
	"os"
	"strings"
	"testing"

	"dkv/internal/nodeproc"
)

// A node started on another node's directory of the same cluster (two
// directories swapped, a --node-id off by one) is refused, and the hint
// names the node the directory belongs to: it said to give every node
// --cluster-id, which changes nothing here, since the cluster ids agree.
func TestSwappedDataDirIsRefusedNamingItsNode(t *testing.T) {
	c, err := nodeproc.NewCluster(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.KillAll)
	if _, err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(2, waitMax); err != nil {
		t.Fatal(err)
	}
	// Node 2's directory where node 1's should be.
	if err := os.Rename(c.DataDir(2), c.DataDir(1)); err != nil {
		t.Fatal(err)
	}
	p, err := c.Launch(1)
	if err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, p)
	stderr := p.Stderr()
	if code != 1 || !strings.Contains(stderr, "the data directory belongs to node 2 of cluster") {
		t.Fatalf("node 1 on node 2's directory: exit %d; want 1 and the refusal; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "start node 2 on it (--node-id 2") || strings.Contains(stderr, "--cluster-id set to the id") {
		t.Errorf("the hint does not say the directory is node 2's (or sends the operator to --cluster-id, which the nodes already agree on); stderr:\n%s", stderr)
	}
	// Back where it belongs, node 2 starts on it.
	if err := os.Rename(c.DataDir(1), c.DataDir(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(2); err != nil {
		t.Fatal(err)
	}
}

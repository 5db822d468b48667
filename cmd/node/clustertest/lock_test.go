package clustertest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"dkv/internal/nodeproc"
)

// A second process on a cluster node's data directory, on other ports, is
// refused with the reason (exit 1), and the node that holds the directory
// goes on serving what was written. (The single-node and mesh tests have
// their own; the lock is taken before a mode's recovery, so each mode is
// checked.)
func TestSecondProcessOnANodesDirectoryIsRefused(t *testing.T) {
	c := startCluster(t)
	kv := dialCluster(t, c.Addrs())
	if err := kv.Set(ctxT(t), "k", "before"); err != nil {
		t.Fatal(err)
	}
	for i := range c.Size() {
		ports, err := nodeproc.FreePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		args := c.Args(i)
		args[slices.Index(args, "--kv-port")+1] = fmt.Sprint(ports[0])
		args[slices.Index(args, "--repl-port")+1] = fmt.Sprint(ports[1])
		p, err := nodeproc.Launch(bin, c.DataDir(i), ports[0], args...)
		if err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, p); code != 1 || !strings.Contains(p.Stderr(), "in use by another dkv process") {
			t.Errorf("a second process on node %d's data directory: exit %d, stderr:\n%s", i, code, p.Stderr())
		}
	}
	if v, err := kv.Get(ctxT(t), "k"); err != nil || v != "before" {
		t.Fatalf("after the refused processes: %q, %v", v, err)
	}
	if err := kv.Set(ctxT(t), "k", "after"); err != nil {
		t.Fatalf("a write after the refused processes: %v", err)
	}
	for i := range c.Size() {
		if c.Node(i) == nil || c.Node(i).Exited() {
			t.Errorf("node %d stopped", i)
		}
	}
}

package clustertest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
)

// A cluster whose nodes share an --auth-file: the nodes prove it to each
// other and elect a leader, the cluster client with the password writes
// through a failover, and a client without it is refused. A node with
// another password is kept out: the two that agree go on without it.
func TestClusterWithAPassword(t *testing.T) {
	const secret = "the cluster's own password"
	dir := t.TempDir()
	pass, err := nodeproc.WritePasswordFile(dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	other, err := nodeproc.WritePasswordFile(t.TempDir(), "another cluster's password")
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodeproc.NewCluster(bin, filepath.Join(dir, "data"), 3, "--auth-file", pass)
	if err != nil {
		t.Fatal(err)
	}
	c.Password = secret
	startNodes(t, c)
	lead, _ := waitLeader(t, c)
	ctx := ctxT(t)
	kv := dialCluster(t, c.Addrs(), client.WithPassword(secret))
	if err := kv.Set(ctx, "k", "before"); err != nil {
		t.Fatalf("set with the password: %v", err)
	}
	stranger, err := client.Dial(c.Addr(lead))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if err := stranger.Set(ctx, "k", "stranger"); !errors.Is(err, client.ErrAuth) {
		t.Errorf("set without the password: %v, want ErrAuth", err)
	}

	// Failover: the two others, which prove the password to each other,
	// elect a new leader and serve. The killed node comes back with
	// another password: its peers refuse it, and it them, each saying why.
	failoverThenKnock(t, c, kv, lead, []string{"--auth-file", other}, func(logs string) bool {
		return strings.Contains(logs, "wrong password: the sender's --auth-file differs from the receiver's") &&
			strings.Contains(logs, "the peer proved another secret")
	})
}

// failoverThenKnock kills the leader, lead, and checks that kv reads the
// "before" it wrote at key k and writes through the failover; then it
// starts lead again with extra flags its peers must refuse, waits until
// refused(the logs) holds, and checks that kv still writes.
func failoverThenKnock(t *testing.T, c *nodeproc.Cluster, kv *client.ClusterKVClient, lead int, extra []string, refused func(logs string) bool) {
	t.Helper()
	ctx := ctxT(t)
	c.Kill(lead)
	waitNewLeader(t, c, lead)
	if v, err := kv.Get(ctx, "k"); err != nil || v != "before" {
		t.Fatalf("get after the failover: %q, %v", v, err)
	}
	if err := kv.Set(ctx, "k", "after"); err != nil {
		t.Fatalf("set after the failover: %v", err)
	}
	c.NodeExtra = make([][]string, c.Size())
	c.NodeExtra[lead] = extra
	if _, err := c.Launch(lead); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitMax)
	for !refused(c.Logs()) {
		if time.Now().After(deadline) {
			t.Fatalf("the refusal of node %d, started with %q, was not logged after %v:\n%s", lead, extra, waitMax, c.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := kv.Set(ctx, "k", "without it"); err != nil {
		t.Fatalf("set while node %d knocks: %v", lead, err)
	}
}

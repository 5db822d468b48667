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
	// elect a new leader and serve.
	c.Kill(lead)
	waitNewLeader(t, c, lead)
	if v, err := kv.Get(ctx, "k"); err != nil || v != "before" {
		t.Fatalf("get after the failover: %q, %v", v, err)
	}
	if err := kv.Set(ctx, "k", "after"); err != nil {
		t.Fatalf("set after the failover: %v", err)
	}

	// The killed node comes back with another password: its peers refuse
	// it, and it them, each saying why.
	c.NodeExtra = make([][]string, c.Size())
	c.NodeExtra[lead] = []string{"--auth-file", other}
	if _, err := c.Launch(lead); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitMax)
	for !strings.Contains(c.Logs(), "wrong password: the sender's --auth-file differs from the receiver's") ||
		!strings.Contains(c.Logs(), "the peer proved another secret") {
		if time.Now().After(deadline) {
			t.Fatalf("no node logged the other password's refusal after %v", waitMax)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := kv.Set(ctx, "k", "without it"); err != nil {
		t.Fatalf("set while a node with another password knocks: %v", err)
	}
}

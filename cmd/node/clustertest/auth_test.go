package clustertest

import (
	"errors"
	"os"
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
	pass := filepath.Join(dir, "dkv.pass")
	other := filepath.Join(dir, "other.pass")
	for path, s := range map[string]string{pass: secret, other: "another cluster's password"} {
		if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := nodeproc.NewCluster(bin, filepath.Join(dir, "data"), 3, "--auth-file", pass)
	if err != nil {
		t.Fatal(err)
	}
	c.Password = secret
	t.Cleanup(func() {
		c.KillAll()
		if t.Failed() {
			t.Logf("node logs:\n%s", c.Logs())
		}
	})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
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

package client

import (
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// startCluster builds cmd/node and runs a 3-node cluster on free ports
// with fresh data directories, until the test ends; it returns once the
// cluster has a leader.
func startCluster(t *testing.T, extra ...string) *nodeproc.Cluster {
	t.Helper()
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := nodeproc.NewCluster(bin, t.TempDir(), 3, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.KillAll()
		if t.Failed() {
			t.Logf("node logs:\n%s", cl.Logs())
		}
	})
	if err := cl.StartAll(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.WaitLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return cl
}

// A connection that the leader closed for being idle is no sign that the
// leader is gone: the next call redials it, as a KVClient does, rather
// than spending an attempt and a backoff on it and leaving for a follower
// (found by review: with WithMaxAttempts(2), every call after an idle
// spell failed, "2 attempts failed", the first on the closed connection,
// the second redirected by a follower).
func TestClusterRedialsTheLeaderAfterIdleClose(t *testing.T) {
	const idle = 200 * time.Millisecond
	cl := startCluster(t, "--idle-timeout", idle.String())
	c := dialClusterT(t, cl.Addrs(), WithMaxAttempts(2))
	ctx := ctxT(t)
	// The first call may need both attempts: one to learn the leader.
	for c.Leader() == "" {
		if err := c.Set(ctx, "k", "first"); err != nil {
			t.Logf("Set before the leader is known: %v", err)
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := range 3 {
		time.Sleep(3 * idle) // every connection the client has is closed now
		if err := c.Set(ctx, "k", "again"); err != nil {
			t.Fatalf("Set %d after an idle spell: %v", i, err)
		}
		if _, err := c.Get(ctx, "k"); err != nil {
			t.Fatalf("Get %d right after a Set: %v", i, err)
		}
	}
}

package client

import (
	"context"
	"syscall"
	"testing"
	"time"

	"dkv/internal/nodeproc"
)

// A node that takes connections but answers nothing (stopped, or hung) is
// left after the attempt timeout when DialCluster opens its first
// connection, as a call leaves it: the dial timeout, which bounds a whole
// dial and is often the caller's whole budget (cmd/kv gives both its
// --timeout), let one such node first in the list fail DialCluster though
// the others serve (found by review: kv --addrs with --auth-file failed,
// "context deadline exceeded", with its first node stopped).
func TestDialClusterLeavesASilentNode(t *testing.T) {
	const secret = "sixteen-bytes-or-more"
	pass, err := nodeproc.WritePasswordFile(t.TempDir(), secret)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := nodeproc.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := nodeproc.NewCluster(bin, t.TempDir(), 3, "--auth-file", pass)
	if err != nil {
		t.Fatal(err)
	}
	cl.Password = secret // for its status checks
	t.Cleanup(func() {
		cl.KillAll()
		if t.Failed() {
			t.Logf("node logs:\n%s", cl.Logs())
		}
	})
	if err := cl.StartAll(); err != nil {
		t.Fatal(err)
	}
	leader, _, err := cl.WaitLeader(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A follower first in the list, stopped: it takes a connection (the
	// kernel does) and never answers the password.
	silent := (leader + 1) % cl.Size()
	p := cl.Process(silent)
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitStopped(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	addrs := []string{cl.Addr(silent)}
	for i := range cl.Size() {
		if i != silent {
			addrs = append(addrs, cl.Addr(i))
		}
	}
	const budget = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	c, err := DialCluster(ctx, addrs, WithPassword(secret),
		WithDialTimeout(budget), WithRequestTimeout(budget), WithAttemptTimeout(time.Second))
	if err != nil {
		t.Fatalf("DialCluster with one node of three silent: %v", err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", "v"); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

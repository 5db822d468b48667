package clustertest

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// The lost disk of OPERATIONS.md's backups section, run as an operator
// would: with node C down, the leader A and node B commit a write X; A's
// disk is lost and A comes back on an empty directory, with its old flags,
// while B is paused (SIGSTOP), and C comes back without X. C may not lead:
// A hears C's term and log, so it rejoins, and grants C no vote, whose log
// it cannot judge. Once B is let go, X is read back. Builds before
// 2026-12-06 took an empty directory for a new node unless --rejoin was
// given: A voted for C, C led without X and B dropped it, and the get
// answered not found (3 times in 3).
func TestWipedLeaderRejoinsWithoutLosingAWrite(t *testing.T) {
	const observeLeaderless = 2 * time.Second
	c := startCluster(t)
	a, _ := waitLeader(t, c)
	b, cc := (a+1)%c.Size(), (a+2)%c.Size()
	kv := dialCluster(t, c.Addrs())
	ctx := ctxT(t)
	if err := kv.Set(ctx, "before", "1"); err != nil {
		t.Fatal(err)
	}
	_, st := waitLeader(t, c)
	waitApplied(t, c, cc, st.Commit)
	c.Kill(cc)
	if err := kv.Set(ctx, "x", "acknowledged"); err != nil {
		t.Fatal(err)
	}

	c.Kill(a)
	if err := os.RemoveAll(c.DataDir(a)); err != nil {
		t.Fatal(err)
	}
	pb := c.Node(b)
	if err := pb.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pb.Signal(syscall.SIGCONT) })
	pa, err := c.Start(a)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.Start(cc)
	if err != nil {
		t.Fatal(err)
	}
	// C stands for election as soon as it has waited an election timeout
	// (200-400 ms) without a leader, and were A to vote as a new node, its
	// vote would make C leader at once. Give it ten election timeouts after it first
	// stood, with A there to answer: a slow machine makes the wait
	// prove less, never fail.
	waitLog(t, pa, fmt.Sprintf("connected to peer %d", cc))
	waitLog(t, pc, fmt.Sprintf("connected to peer %d", a))
	waitLog(t, pc, "asking for pre-votes")
	for end := time.Now().Add(observeLeaderless); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if s, err := c.Status(cc, time.Second); err == nil && s.Role == "leader" {
			t.Logf("node %d leads at term %d while node %d is paused", cc, s.Term, b)
			break
		}
	}

	if err := pb.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c)
	got, err := kv.Get(ctx, "x")
	if err != nil || got != "acknowledged" {
		t.Fatalf("the acknowledged write x reads %q, %v after node %d rejoined in place of its lost disk", got, err, a)
	}
}

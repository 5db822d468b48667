package clustertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dkv/client"
)

// SIGTERM of the leader under a write load: it hands the office to a
// follower before it exits (election.Node.HandOver), so the next leader is
// elected in the term after its own, without a timeout's campaign; every
// write is acknowledged or refused without effect, none left of unknown
// outcome, and every acknowledged one is readable through the new leader.
func TestClusterLeaderStoppedHandsOver(t *testing.T) {
	c := startCluster(t)
	lead, before := waitLeader(t, c)
	kvs := []*client.ClusterKVClient{dialCluster(t, c.Addrs()), dialCluster(t, c.Addrs())}
	load := startWriteLoad(t, kvs, 8)
	defer load.finish()
	load.waitAcks(t, 300)

	stopped := time.Now()
	load.epoch.Store(1)
	if err := c.Stop(lead, 10*time.Second); err != nil {
		t.Fatalf("node %d on SIGTERM: %v", lead, err)
	}
	took := time.Since(stopped)
	load.waitAcks(t, 300)
	load.finish()
	newLead, after := waitNewLeader(t, c, lead)
	logs := c.Process(lead).Stderr()
	if want := fmt.Sprintf("handed the office to node %d in", newLead); !strings.Contains(logs, want) {
		t.Fatalf("node %d's log does not say %q:\n%s", lead, want, logs)
	}
	if after.Term != before.Term+1 {
		t.Errorf("node %d leads in term %d; node %d led in %d: a hand-over is one election, in the next term", newLead, after.Term, lead, before.Term)
	}
	load.mu.Lock()
	t.Logf("node %d stopped (%v from SIGTERM to exit); node %d leads in term %d; %d acknowledged, %d unknown, %d failed",
		lead, took.Round(time.Millisecond), newLead, after.Term, len(load.acked), len(load.unknown), load.failed)
	if len(load.unknown) != 0 || load.failed != 0 {
		t.Errorf("%d writes of unknown outcome and %d failed across a hand-over; want none", len(load.unknown), load.failed)
	}
	load.mu.Unlock()
	checkKeys(t, dialCluster(t, c.Addrs()), load.acked, load.unknown)
}

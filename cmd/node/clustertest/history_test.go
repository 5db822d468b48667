package clustertest

import (
	"math/rand/v2"
	"testing"
	"time"

	"dkv/internal/historytest"
)

// The real-process history check of the single node (cmd/node's
// TestRealServerHistoryIsLinearizable), against a 3-node cluster whose
// leaders are SIGKILLed and restarted under the load. Each logical call of
// a ClusterKVClient is one op, from its call to its return, however many
// nodes it tried: the client resends a write under the same session, which
// the cluster applies at most once. The history must be linearizable per
// key, keep every acknowledged write through a final crash of the leader,
// and show no BulkSet in part.
func TestClusterHistoryIsLinearizable(t *testing.T) {
	// Small segments and snapshots, so that rolls, snapshots and snapshot
	// transfers to the restarted nodes happen under the load too.
	c := startCluster(t, "--segment-bytes", "16384", "--snapshot-log-bytes", "65536")
	waitLeader(t, c)

	rec := historytest.NewRecorder()

	// Four callers share one client, two have one each.
	shared := dialCluster(t, c.Addrs())
	const workers, keys = 6, 6
	cs := startCallers(workers, func(w int) historytest.Caller {
		kv := shared
		if w >= 4 {
			kv = dialCluster(t, c.Addrs())
		}
		return historytest.Caller{KV: kv, Keys: keys, Rand: rand.New(rand.NewPCG(uint64(w), 13)), ID: w, Rec: rec,
			Patient: 5 * time.Second, Impatient: 3 * time.Millisecond}
	})
	progress := func(n int64) { t.Helper(); cs.progress(t, n) }

	progress(3000)
	for round := range 2 {
		lead, _ := waitLeader(t, c)
		c.Kill(lead)
		t.Logf("round %d: killed the leader, node %d, after %d calls", round, lead, cs.done.Load())
		progress(1500) // through the new leader
		if _, err := c.Start(lead); err != nil {
			cs.stop.Store(true)
			t.Fatal(err)
		}
		progress(1500)
	}
	cs.halt()

	// The final reads, after one more crash of the leader: durability is
	// judged on them.
	lead, _ := waitLeader(t, c)
	c.Kill(lead)
	if _, err := c.Start(lead); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	historytest.FinalReads(t, kv, workers, keys, waitMax, rec)
	historytest.Judge(t, rec, 5000)
}

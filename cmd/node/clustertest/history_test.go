package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dkv/checks"
	"dkv/client"
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

	origin := time.Now()
	now := func() int64 { return int64(time.Since(origin)) }
	var mu sync.Mutex
	var h checks.History
	record := func(op checks.Op) {
		mu.Lock()
		h.Add(op)
		mu.Unlock()
	}

	// Four callers share one client, two have one each.
	shared := dialCluster(t, c.Addrs())
	const workers, keys = 6, 6
	var stop atomic.Bool
	var done atomic.Int64 // calls made
	var wg sync.WaitGroup
	for w := range workers {
		kv := shared
		if w >= 4 {
			kv = dialCluster(t, c.Addrs())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 13))
			for req := 0; !stop.Load(); req++ {
				runOp(kv, r, w, req, keys, now, record)
				done.Add(1)
			}
		}()
	}
	// progress waits until the clients have made n more calls.
	progress := func(n int64) {
		t.Helper()
		target := done.Load() + n
		deadline := time.Now().Add(waitMax)
		for done.Load() < target {
			if time.Now().After(deadline) {
				stop.Store(true)
				t.Fatalf("only %d of %d calls made after %v", done.Load(), target, waitMax)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	progress(3000)
	for round := range 2 {
		lead, _ := waitLeader(t, c)
		c.Kill(lead)
		t.Logf("round %d: killed the leader, node %d, after %d calls", round, lead, done.Load())
		progress(1500) // through the new leader
		if _, err := c.Start(lead); err != nil {
			stop.Store(true)
			t.Fatal(err)
		}
		progress(1500)
	}
	stop.Store(true)
	wg.Wait()

	// The final reads, after one more crash of the leader: durability is
	// judged on them.
	lead, _ := waitLeader(t, c)
	c.Kill(lead)
	if _, err := c.Start(lead); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	for k := range keys {
		key := fmt.Sprint("k", k)
		op := checks.Op{Client: workers, Req: k, Kind: checks.KindGet, Key: key, Final: true, Call: now()}
		ctx, cancel := context.WithTimeout(context.Background(), waitMax)
		v, err := kv.Get(ctx, key)
		cancel()
		op.Return = now()
		switch {
		case err == nil:
			op.Outcome, op.Found, op.Value = checks.OK, true, v
		case errors.Is(err, client.ErrNotFound):
			op.Outcome = checks.OK
		default:
			t.Fatalf("final read of %s: %v", key, err)
		}
		record(op)
	}

	ok, failed, unknown := h.Count()
	t.Logf("%d ops: %d ok, %d failed, %d unknown outcome", len(h.Ops), ok, failed, unknown)
	if ok < 5000 || unknown == 0 {
		t.Fatalf("%d ok and %d unknown: the test needs many of the first and some of the second", ok, unknown)
	}
	lin, findings := checks.Verdict(&h, checks.LinOptions{Timeout: time.Minute, ReportDir: t.TempDir()})
	t.Logf("linearizability: %d partitions, %d ops checked in %v", lin.Partitions, lin.Checked, lin.Elapsed.Round(time.Millisecond))
	for _, f := range findings {
		t.Error(f)
	}
}

// runOp makes one random call and records it, once, from its call to its
// return. Writes carry values unique to the call, so that a read names the
// write it saw.
func runOp(kv *client.ClusterKVClient, r *rand.Rand, w, req, keys int, now func() int64, record func(checks.Op)) {
	timeout := 5 * time.Second
	if r.IntN(20) == 0 {
		// Gives up before the answer comes, often while it is in flight:
		// an unknown outcome, which may take effect later still.
		timeout = time.Duration(100+r.IntN(3000)) * time.Microsecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	key := func() string { return fmt.Sprint("k", r.IntN(keys)) }
	value := fmt.Sprintf("c%d.%d", w, req)
	op := checks.Op{Client: w, Req: req}
	var err error
	switch p := r.IntN(100); {
	case p < 35:
		op.Kind, op.Key = checks.KindGet, key()
		op.Call = now()
		op.Value, err = kv.Get(ctx, op.Key)
		op.Return = now()
		switch {
		case err == nil:
			op.Outcome, op.Found = checks.OK, true
		case errors.Is(err, client.ErrNotFound):
			op.Outcome, op.Value = checks.OK, ""
		default:
			return // a read that failed observed nothing
		}
		record(op)
		return
	case p < 70:
		op.Kind, op.Key, op.Value = checks.KindSet, key(), value
		op.Call = now()
		err = kv.Set(ctx, op.Key, op.Value)
	case p < 80:
		op.Kind, op.Key = checks.KindDelete, key()
		op.Call = now()
		err = kv.Delete(ctx, op.Key)
	default:
		op.Kind = checks.KindBulkSet
		for i := range 2 + r.IntN(3) {
			op.Items = append(op.Items, client.KV{Key: key(), Value: fmt.Sprintf("%s.%d", value, i)})
		}
		op.Call = now()
		err = kv.BulkSet(ctx, op.Items)
	}
	op.Return = now()
	switch {
	case err == nil:
		op.Outcome = checks.OK
	case isUnknown(err):
		op.Outcome, op.Note = checks.Unknown, err.Error()
	default:
		// The client promises that any other error means the write was
		// not applied; the checkers hold it to that.
		op.Outcome, op.Note = checks.Failed, err.Error()
	}
	record(op)
}
